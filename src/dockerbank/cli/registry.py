"""``pull``, ``push``, ``login``, ``logout`` and ``registry serve|gc``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dockerbank.cli.common import engine_of, human_size
from dockerbank.errors import InvalidArgument, UsageError

_INSECURE = click.option("--insecure-registry", "insecure", multiple=True, metavar="HOST[:PORT]",
                         help="Allow plain HTTP or unverified TLS to this registry (repeatable).")


@click.command("pull")
@click.argument("name")
@click.option("-a", "--all-tags", is_flag=True, help="Download all tagged images in the repository.")
@click.option("--platform", default=None, help="Set platform if server is multi-platform capable (os/arch[/variant]).")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output.")
@_INSECURE
@click.pass_context
def pull_cmd(ctx: click.Context, name: str, all_tags: bool, platform: str | None, quiet: bool,
             insecure: tuple[str, ...]) -> None:
    """Download an image from a registry."""
    from dockerbank.oci import reference as refs
    from dockerbank.registry.client.progress import reporter

    if all_tags:
        ref = refs.parse(name, default_tag=False)
        if ref.tag or ref.digest:
            raise InvalidArgument("tag can't be used with --all-tags/-a")
    elif not quiet:
        ref = refs.parse(name)
        if ref.tag and not ref.digest and ":" not in name.rsplit("/", 1)[-1]:
            click.echo(f"Using default tag: {ref.tag}")
    progress = reporter(quiet)
    try:
        results = engine_of(ctx).registry.pull(name, platform=platform, all_tags=all_tags, progress=progress,
                                               insecure=insecure)
    finally:
        progress.close()
    if all_tags and not quiet:
        click.echo(f"{refs.parse(name).repository}")
        return
    for result in results:
        click.echo(str(result.reference))


@click.command("push")
@click.argument("name", required=False)
@click.option("-a", "--all-tags", is_flag=True, help="Push all tags of an image to the repository.")
@click.option("--all-from-stack", "stack", default=None, metavar="PROJECT",
              help="Push every image the compose stack PROJECT uses to --registry.")
@click.option("--registry", default=None, help="With --all-from-stack: the registry (and path) to push to.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output.")
@click.option("--chunk-size", type=int, default=None, hidden=True,
              help="Upload layers in PATCH chunks of this many bytes (default: one request per layer).")
@_INSECURE
@click.pass_context
def push_cmd(ctx: click.Context, name: str | None, all_tags: bool, stack: str | None, registry: str | None,
             quiet: bool, chunk_size: int | None, insecure: tuple[str, ...]) -> None:
    """Upload an image to a registry."""
    from dockerbank.errors import UsageError
    from dockerbank.oci import reference as refs
    from dockerbank.registry.client.progress import reporter

    if stack is not None or registry is not None:
        if stack is None or not registry or name or all_tags:
            raise UsageError("push --all-from-stack PROJECT --registry REGISTRY takes no image name or --all-tags")
        progress = reporter(quiet)
        try:
            reports = engine_of(ctx).stacks.push_all(stack, registry, progress=progress, insecure=insecure)
        finally:
            progress.close()
        for report in reports:
            click.echo(f"{report.source} -> {report.target}" + (f" {report.digest}" if report.digest else ""))
        return
    if not name:
        raise UsageError("push requires exactly 1 argument (an image name), or --all-from-stack PROJECT")
    if all_tags and refs.parse(name, default_tag=False).tag:
        raise InvalidArgument("tag can't be used with --all-tags/-a")
    progress = reporter(quiet)
    try:
        results = engine_of(ctx).registry.push(name, all_tags=all_tags, progress=progress, insecure=insecure,
                                               chunk_size=chunk_size)
    finally:
        progress.close()
    if quiet:
        for result in results:
            click.echo(str(result.reference))


def _server_of(server: str | None) -> str:
    if not server:
        return "docker.io"
    for prefix in ("https://", "http://"):
        server = server.removeprefix(prefix)
    server = server.rstrip("/")
    if server.endswith(("/v1", "/v2")):
        server = server[:-3]
    return "docker.io" if server in ("index.docker.io", "registry-1.docker.io") else server


@click.command("login")
@click.argument("server", required=False)
@click.option("-u", "--username", default=None, help="Username.")
@click.option("-p", "--password", default=None, help="Password.")
@click.option("--password-stdin", is_flag=True, help="Take the password from stdin.")
@_INSECURE
@click.pass_context
def login_cmd(ctx: click.Context, server: str | None, username: str | None, password: str | None,
              password_stdin: bool, insecure: tuple[str, ...]) -> None:
    """Log in to a registry (credentials kept in ~/.docker/config.json)."""
    registry = _server_of(server)
    if password_stdin:
        if password:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise UsageError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        click.echo("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", err=True)
    if not username:
        username = click.prompt("Username")
    if not password:
        password = click.prompt("Password", hide_input=True)
    engine_of(ctx).registry.login(registry, username, password, insecure)
    click.echo("Login Succeeded")


@click.command("logout")
@click.argument("server", required=False)
@click.pass_context
def logout_cmd(ctx: click.Context, server: str | None) -> None:
    """Log out from a registry."""
    registry = _server_of(server)
    if engine_of(ctx).registry.logout(registry):
        click.echo(f"Removing login credentials for {registry}")
    else:
        click.echo(f"Not logged in to {registry}")


@click.group("registry")
def registry_group() -> None:
    """Run a private registry (OCI distribution spec v1.1)."""


def _storage_dir(ctx: click.Context, storage: str | None) -> Path:
    return Path(storage) if storage else engine_of(ctx).config.root / "registry"


@registry_group.command("serve")
@click.option("--listen", default="127.0.0.1:5000", show_default=True, help="Address to listen on (HOST:PORT).")
@click.option("--storage", default=None, help="Storage directory (default: <root>/registry).")
@click.option("--htpasswd", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Require Basic auth checked against this htpasswd file (bcrypt).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None, help="TLS certificate (PEM).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None, help="TLS private key (PEM).")
@click.option("--read-only", is_flag=True, help="Refuse every write (for consistent backups of the storage).")
@click.pass_context
def serve_cmd(ctx: click.Context, listen: str, storage: str | None, htpasswd: str | None, tls_cert: str | None,
              tls_key: str | None, read_only: bool) -> None:
    """Serve a registry until SIGTERM or SIGINT (requests in flight get 2 s to finish; exit 0)."""
    from dockerbank.registry.server.app import parse_listen, serve_forever, ssl_context
    from dockerbank.registry.server.storage import RegistryStorage

    host, port = parse_listen(listen)
    folder = _storage_dir(ctx, storage)
    tls = ssl_context(Path(tls_cert) if tls_cert else None, Path(tls_key) if tls_key else None)
    store = RegistryStorage(folder, read_only=read_only)
    scheme = "https" if tls else "http"

    def ready() -> None:
        mode = " read-only" if read_only else ""
        auth = " with htpasswd auth" if htpasswd else ""
        click.echo(f"Serving{mode} registry on {scheme}://{listen} from {folder}{auth}", err=True)

    try:
        signame = serve_forever(store, host, port, Path(htpasswd) if htpasswd else None, tls, ready)
    except OSError as exc:
        raise InvalidArgument(f"cannot listen on {listen}: {exc.strerror or exc}") from exc
    click.echo(f"Registry on {scheme}://{listen} stopped ({signame})", err=True)


@registry_group.command("gc")
@click.option("--storage", default=None, help="Storage directory (default: <root>/registry).")
@click.option("--dry-run", is_flag=True, help="Only show what would be deleted.")
@click.pass_context
def gc_cmd(ctx: click.Context, storage: str | None, dry_run: bool) -> None:
    """Delete blobs no manifest references (run while the registry is stopped or read-only)."""
    from dockerbank.registry.server.storage import RegistryStorage

    folder = _storage_dir(ctx, storage)
    if not folder.is_dir():
        raise InvalidArgument(f"no registry storage at {folder}")
    report = RegistryStorage(folder).gc(dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for digest in report.deleted:
        click.echo(f"{verb} blob {digest}")
    click.echo(f"{len(report.deleted)} blobs {verb}, {human_size(report.freed)} "
               f"{'reclaimable' if dry_run else 'freed'}; {report.marked} blobs in use; "
               f"{report.uploads_removed} stale uploads {'found' if dry_run else 'removed'}")


COMMANDS = {
    "pull": pull_cmd,
    "push": push_cmd,
    "login": login_cmd,
    "logout": logout_cmd,
    "registry": registry_group,
}
