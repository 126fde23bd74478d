"""``dockerbank system service``: serve the Docker Engine API for real Docker clients."""

from __future__ import annotations

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
@click.pass_context
def service_cmd(ctx: click.Context, hosts: tuple[str, ...], tlscacert: str | None, tlscert: str | None,
                tlskey: str | None, insecure_tcp: bool, metrics_addr: str | None, backup_repo: str | None,
                backup_password_file: str | None) -> None:
    """Serve the Docker Engine API (docker CLI, docker-py, docker-compose) until interrupted."""
    from dockerbank.api.server import ServeOptions, TlsFiles, run

    engine = engine_of(ctx)
    run(engine.config, ServeOptions(list(hosts), TlsFiles(tlscacert, tlscert, tlskey), insecure_tcp,
                                    metrics_addr, backup_repo, backup_password_file))


COMMANDS = {"service": service_cmd}
