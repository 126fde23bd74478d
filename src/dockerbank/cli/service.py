"""``dockerbank system service``: serve the Docker Engine API for real Docker clients."""

from __future__ import annotations

import functools

import click

from dockerbank.cli.common import engine_of


@click.command("service")
@click.option("-H", "--host", "hosts", multiple=True, metavar="URL",
              help="unix:///path/to.sock (default <run-root>/docker.sock) or tcp://HOST:PORT (needs TLS); repeatable")
@click.option("--tlscacert", default=None, help="CA that signs the accepted client certificates (TCP)")
@click.option("--tlscert", default=None, help="Server certificate (TCP)")
@click.option("--tlskey", default=None, help="Server key (TCP)")
@click.option("--insecure-tcp", is_flag=True, help="Allow TCP without TLS (anyone reaching the port is root)")
@click.option("--metrics-addr", default=None, metavar="HOST:PORT", is_flag=False, flag_value="127.0.0.1:9323",
              help="Serve Prometheus metrics at http://HOST:PORT/metrics (alone: 127.0.0.1:9323)")
@click.option("--backup-repo", default=None, metavar="URL",
              help="Backup repository the metrics report on (default: <root>/backups)")
@click.option("--backup-password-file", default=None, metavar="FILE",
              help="Passphrase of an encrypted backup repository (else $DOCKERBANK_BACKUP_PASSWORD)")
@click.option("--dashboard", "dashboard_listen", default=None, metavar="HOST:PORT",
              help="Serve the web dashboard too, in this process (needs --dashboard-htpasswd)")
@click.option("--dashboard-htpasswd", default=None, metavar="FILE", help="The dashboard's users (bcrypt htpasswd)")
@click.option("--dashboard-viewers", default="", metavar="USER,...", help="Dashboard users who may only look")
@click.option("--dashboard-tls-cert", default=None, metavar="FILE", help="Serve the dashboard over HTTPS")
@click.option("--dashboard-tls-key", default=None, metavar="FILE", help="Key of --dashboard-tls-cert")
@click.pass_context
def service_cmd(ctx: click.Context, hosts: tuple[str, ...], tlscacert: str | None, tlscert: str | None,
                tlskey: str | None, insecure_tcp: bool, metrics_addr: str | None, backup_repo: str | None,
                backup_password_file: str | None, dashboard_listen: str | None, dashboard_htpasswd: str | None,
                dashboard_viewers: str, dashboard_tls_cert: str | None, dashboard_tls_key: str | None) -> None:
    """Serve the Docker Engine API (docker CLI, docker-py, docker-compose) until SIGTERM or SIGINT
    (requests in flight get 2 s to finish, streams such as events are ended; exit 0)."""
    from dockerbank.api.server import ServeOptions, TlsFiles, run
    from dockerbank.errors import UsageError

    engine = engine_of(ctx)
    beside = []
    if dashboard_listen:
        if not dashboard_htpasswd:
            raise UsageError("--dashboard needs --dashboard-htpasswd (every page needs a login)")
        from dockerbank.dashboard.auth import Users
        from dockerbank.dashboard.server import Options, prepare, serve

        users = Users.load(dashboard_htpasswd, [v.strip() for v in dashboard_viewers.split(",") if v.strip()])
        options = Options(users, backup_repo=backup_repo)
        host, port, ssl_context = prepare(options, dashboard_listen, dashboard_tls_cert, dashboard_tls_key)
        beside.append(functools.partial(serve, engine.config, options, host, port, ssl_context))
    signame = run(engine.config, ServeOptions(list(hosts), TlsFiles(tlscacert, tlscert, tlskey), insecure_tcp,
                                              metrics_addr, backup_repo, backup_password_file), *beside)
    click.echo(f"API service stopped ({signame})", err=True)


COMMANDS = {"service": service_cmd}
