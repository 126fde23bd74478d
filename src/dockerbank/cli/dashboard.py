"""``dockerbank dashboard``: the web dashboard for the people who run the host."""

from __future__ import annotations

import click

from dockerbank.cli.common import engine_of


@click.command("dashboard")
@click.option("--listen", default="127.0.0.1:8090", show_default=True, metavar="HOST:PORT",
              help="Address to serve on; beyond loopback only with TLS")
@click.option("--htpasswd", required=True, metavar="FILE",
              help="Users allowed in (bcrypt lines, as `htpasswd -B` writes them); admins unless --viewers names them")
@click.option("--viewers", default="", metavar="USER,...", help="Users of the htpasswd file who may only look")
@click.option("--tls-cert", default=None, metavar="FILE", help="Serve HTTPS with this certificate (PEM)")
@click.option("--tls-key", default=None, metavar="FILE", help="Key of --tls-cert (PEM)")
@click.option("--backup-repo", default=None, metavar="URL",
              help="Repository of 'back up now' and of the backup column (unencrypted; a directory or oci://)")
@click.pass_context
def dashboard_cmd(ctx: click.Context, listen: str, htpasswd: str, viewers: str, tls_cert: str | None,
                  tls_key: str | None, backup_repo: str | None) -> None:
    """Serve the web dashboard until interrupted (every page needs a login)."""
    from dockerbank.dashboard.auth import Users
    from dockerbank.dashboard.server import Options, run

    engine = engine_of(ctx)
    users = Users.load(htpasswd, [v.strip() for v in viewers.split(",") if v.strip()])
    run(engine.config, Options(users, backup_repo=backup_repo), listen, tls_cert, tls_key)


COMMANDS = {"dashboard": dashboard_cmd}
