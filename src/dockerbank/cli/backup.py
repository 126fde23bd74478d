"""``dockerbank backup create|ls|inspect|verify|rm|prune`` and ``dockerbank restore``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from dockerbank.cli.common import engine_of, human_size, print_table
from dockerbank.errors import CorruptData, InvalidArgument


PASSWORD_ENV = "DOCKERBANK_BACKUP_PASSWORD"


def passphrase_from(password_file: str | None, *, env: str | tuple[str, ...] = PASSWORD_ENV, confirm: bool = False,
                    prompt: str = "Passphrase for the backup repository"):
    """A callable giving the passphrase: from the file, else the environment, else the terminal."""

    def get() -> bytes:
        if password_file:
            try:
                return Path(password_file).read_bytes().rstrip(b"\r\n")
            except OSError as exc:
                raise InvalidArgument(f"cannot read the password file {password_file}: {exc.strerror}") from exc
        names = (env,) if isinstance(env, str) else env
        for name in names:
            if os.environ.get(name):
                return os.environ[name].encode()
        if sys.stdin.isatty():
            return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True).encode()
        raise InvalidArgument(f"a passphrase is needed: give --password-file, {names[0]} or run on a terminal")

    return get


def _repo(ctx: click.Context, url: str | None, password_file: str | None = None):
    from dockerbank.backup.repository import open_repository

    return open_repository(engine_of(ctx), url, passphrase_from(password_file))


class _RichProgress:
    """Progress bars on stderr (only when it is a terminal)."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), console=Console(stderr=True), transient=True)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def task(self, description, total):
        task_id = self.progress.add_task(description, total=total or None)
        return lambda n: self.progress.advance(task_id, n)

    def done(self, description):
        pass


def _progress():
    from contextlib import nullcontext

    from dockerbank.backup.create import Progress

    if sys.stderr.isatty():
        return _RichProgress()
    return nullcontext(Progress())




def repo_option(func):
    """``--repo URL`` and ``--password-file FILE`` (an encrypted repository's passphrase)."""
    func = click.option("--password-file", type=click.Path(dir_okay=False),
                        help=f"File holding the repository's passphrase (else ${PASSWORD_ENV} or a prompt)")(func)
    return click.option("--repo", metavar="URL",
                        help="Backup repository: a directory, dir:PATH, oci://REGISTRY/NAME or sftp://[USER@]HOST[:PORT]/PATH "
                             "(default: <root>/backups)")(func)


@click.group("backup")
def backup() -> None:
    """Back up volumes, containers and the whole host into a deduplicated repository."""


@backup.command("init")
@click.option("--encrypt", is_flag=True, help="Encrypt and authenticate every chunk and manifest (AES-256-GCM)")
@repo_option
@click.pass_context
def init_cmd(ctx, encrypt, repo, password_file) -> None:
    """Create a repository (encrypted with --encrypt; the passphrase is asked twice on a terminal)."""
    repository = _repo(ctx, repo, password_file)
    passphrase = passphrase_from(password_file, confirm=True, prompt="New passphrase")() if encrypt else None
    config = repository.create(encrypt=encrypt, passphrase=passphrase)
    kind = "encrypted (aes-256-gcm, keyed chunk IDs)" if encrypt else "unencrypted"
    click.echo(f"created {kind} backup repository {config['id'][:12]} at {repository.url}")


@backup.group("key")
def key_group() -> None:
    """Passphrases of an encrypted repository (each one a key file wrapping the master key)."""


@key_group.command("ls")
@repo_option
@click.pass_context
def key_ls_cmd(ctx, repo, password_file) -> None:
    """List the key files (* marks the one your passphrase opened)."""
    rows = [[("*" if k["current"] else " ") + k["id"], k["username"], k["hostname"], k["created"], k["kdf"]]
            for k in _repo(ctx, repo, password_file).keys()]
    print_table([" ID", "USER", "HOST", "CREATED", "KDF"], rows)


@key_group.command("add")
@click.option("--new-password-file", type=click.Path(dir_okay=False), help="File holding the new passphrase")
@repo_option
@click.pass_context
def key_add_cmd(ctx, new_password_file, repo, password_file) -> None:
    """Add a passphrase (opened with an existing one)."""
    repository = _repo(ctx, repo, password_file)
    repository.codec  # noqa: B018 - unlock with the old passphrase before asking for the new one
    new = passphrase_from(new_password_file, env="DOCKERBANK_BACKUP_NEW_PASSWORD", confirm=True,
                          prompt="New passphrase")()
    click.echo(repository.add_key(new))


@key_group.command("rm")
@click.argument("key_id")
@repo_option
@click.pass_context
def key_rm_cmd(ctx, key_id, repo, password_file) -> None:
    """Remove a passphrase's key file (not the one used to open the repository)."""
    click.echo(_repo(ctx, repo, password_file).remove_key(key_id))


@backup.command("create")
@click.argument("volumes", nargs=-1)
@click.option("--container", "containers", multiple=True, help="Container (top layer, config, its volumes)")
@click.option("--stack", "stacks", multiple=True, help="Containers with LABEL=VALUE, or a compose project name")
@click.option("--all", "all_", is_flag=True, help="Whole host: volumes, containers, local images, networks, state")
@click.option("--consistency", default="pause", show_default=True,
              type=click.Choice(["pause", "stop", "dump", "none"]), help="What to do with running containers")
@click.option("--with-images", is_flag=True, help="Include the images of the saved containers")
@click.option("--tag", "tags", multiple=True, help="Tag the snapshot")
@repo_option
@click.option("-q", "--quiet", is_flag=True, help="Print only the snapshot ID")
@click.pass_context
def create_cmd(ctx, volumes, containers, stacks, all_, consistency, with_images, tags, repo, password_file,
               quiet) -> None:
    """Create a snapshot."""
    from dockerbank.backup.create import CreateOptions, create

    engine = engine_of(ctx)
    opts = CreateOptions(list(volumes), list(containers), list(stacks), all_, consistency, with_images, list(tags))
    with _progress() as progress:
        report = create(engine, _repo(ctx, repo, password_file), opts, progress)
    snap = report.snapshot
    if quiet:
        click.echo(snap.id)
        return
    rows = [[kind, name, human_size(st.size), human_size(st.new_bytes), human_size(st.stored_bytes),
             human_size(st.dedup_bytes)] for kind, name, st in report.items]
    print_table(["KIND", "NAME", "SIZE", "NEW", "STORED", "DEDUPLICATED"], rows)
    total = report.total
    click.echo(f"snapshot {snap.id}: {len(snap.parts)} parts, {human_size(total.size)} in "
               f"{report.seconds:.1f}s; new data {human_size(total.new_bytes)} "
               f"(stored {human_size(total.stored_bytes)} compressed), deduplicated {human_size(total.dedup_bytes)}")
    for warning in report.warnings:
        click.echo(f"WARNING: {warning}", err=True)


@backup.command("ls")
@repo_option
@click.option("-q", "--quiet", is_flag=True, help="Only IDs")
@click.option("--format", "fmt", help="json for one JSON object per line")
@click.pass_context
def ls_cmd(ctx, repo, password_file, quiet, fmt) -> None:
    """List snapshots (oldest first)."""
    repository = _repo(ctx, repo, password_file)
    snaps = repository.snapshots()
    if quiet:
        for snap in snaps:
            click.echo(snap.id)
        return
    if fmt == "json":
        for snap in snaps:
            click.echo(json.dumps({"ID": snap.id, "Created": snap.created, "Tags": snap.tags, "Size": snap.size,
                                   "Parts": [f"{p.kind}:{p.name}" for p in snap.parts]}))
        return
    rows = [[s.id, s.created, ",".join(s.tags), human_size(s.size),
             ", ".join(f"{p.kind}:{p.name[:24]}" for p in s.parts)] for s in snaps]
    print_table(["ID", "CREATED", "TAGS", "SIZE", "CONTENTS"], rows)


@backup.command("inspect")
@click.argument("snapshots", nargs=-1, required=True)
@click.option("--chunks", is_flag=True, help="Include every part's chunk list")
@repo_option
@click.pass_context
def inspect_cmd(ctx, snapshots, chunks, repo, password_file) -> None:
    """Show snapshot manifests as JSON."""
    repository = _repo(ctx, repo, password_file)
    out = []
    for ref in snapshots:
        data = repository.get(ref).to_dict()
        if not chunks:
            for part in data["parts"]:
                part["chunks"] = len(part["chunks"])
        out.append(data)
    click.echo(json.dumps(out, indent=4))


@backup.command("verify")
@click.argument("snapshots", nargs=-1)
@repo_option
@click.pass_context
def verify_cmd(ctx, snapshots, repo, password_file) -> None:
    """Re-hash every chunk and part of the snapshots (all when none is named)."""
    from dockerbank.monitor import verifylog

    repository = _repo(ctx, repo, password_file)
    snaps = [repository.get(r) for r in snapshots] if snapshots else repository.snapshots()
    bad = 0
    with _progress() as progress:
        for snap in snaps:
            problems, unrecorded = verifylog.verify(engine_of(ctx).config.root, repository, snap,
                                                    progress.task(f"verify {snap.id}", snap.size))
            if unrecorded:
                click.echo(f"WARNING: {unrecorded}", err=True)
            if problems:
                bad += 1
                for problem in problems:
                    click.echo(f"{snap.id}: {problem}", err=True)
            else:
                click.echo(f"{snap.id}: ok ({len(snap.parts)} parts, {human_size(snap.size)})")
    if bad:
        raise CorruptData(f"{bad} of {len(snaps)} snapshots failed verification")


@backup.command("rm")
@click.argument("snapshots", nargs=-1, required=True)
@repo_option
@click.pass_context
def rm_cmd(ctx, snapshots, repo, password_file) -> None:
    """Remove snapshots and the chunks only they used."""
    repository = _repo(ctx, repo, password_file)
    with repository.lock(exclusive=True):
        ids = [repository.get(r).id for r in snapshots]
        repository.remove(ids)
        count, freed = repository.gc()
    for sid in ids:
        click.echo(sid)
    click.echo(f"freed {count} chunks, {human_size(freed)}", err=True)


@backup.command("prune")
@click.option("--keep-last", type=int, default=0)
@click.option("--keep-daily", type=int, default=0)
@click.option("--keep-weekly", type=int, default=0)
@click.option("--dry-run", is_flag=True)
@repo_option
@click.pass_context
def prune_cmd(ctx, keep_last, keep_daily, keep_weekly, dry_run, repo, password_file) -> None:
    """Remove snapshots outside the keep rules, then unused chunks."""
    from dockerbank.backup.repository import select_prune

    repository = _repo(ctx, repo, password_file)
    with repository.lock(exclusive=True):
        keep, remove = select_prune(repository.snapshots(), keep_last, keep_daily, keep_weekly)
        for snap in remove:
            click.echo(f"{'would remove' if dry_run else 'removed'} {snap.id}")
        if dry_run:
            return
        repository.remove([s.id for s in remove])
        count, freed = repository.gc()
    click.echo(f"kept {len(keep)} snapshots; freed {count} chunks, {human_size(freed)}", err=True)


@backup.command("copy")
@click.argument("snapshots", nargs=-1)
@click.option("--from", "source", required=True, metavar="URL", help="Repository to copy from")
@click.option("--to", "target", required=True, metavar="URL", help="Repository to copy to (created if missing)")
@click.option("--from-password-file", type=click.Path(dir_okay=False),
              help="Passphrase of the source (else $DOCKERBANK_BACKUP_FROM_PASSWORD, $DOCKERBANK_BACKUP_PASSWORD)")
@click.option("--password-file", type=click.Path(dir_okay=False), help="Passphrase of an existing target")
@click.pass_context
def copy_cmd(ctx, snapshots, source, target, from_password_file, password_file) -> None:
    """Copy snapshots (all when none is named) to another repository, sending only missing chunks."""
    from dockerbank.backup.copy import copy_snapshots
    from dockerbank.backup.repository import open_repository

    engine = engine_of(ctx)
    src = open_repository(engine, source, passphrase_from(
        from_password_file, env=("DOCKERBANK_BACKUP_FROM_PASSWORD", PASSWORD_ENV), prompt="Passphrase of the source"))
    dst = open_repository(engine, target, passphrase_from(password_file, prompt="Passphrase of the target"))
    try:
        with _progress() as progress:
            report = copy_snapshots(src, dst, list(snapshots), progress.task(f"copy to {dst.url}", 0))
    finally:
        src.close()
        dst.close()
    from dockerbank.monitor import verifylog

    verifylog.record_copy(engine.config.root, dst.url, src.url, len(report.copied) + len(report.skipped))
    for sid in report.copied:
        click.echo(f"copied {sid}")
    for sid in report.skipped:
        click.echo(f"{sid} is already in {dst.url}")
    click.echo(f"sent {report.chunks_sent} chunks ({human_size(report.bytes_sent)}), "
               f"{report.chunks_present} were there, in {report.seconds:.1f}s"
               + ("" if report.raw else " (re-encrypted for the target's key)"), err=True)


@backup.command("schedule")
@click.argument("volumes", nargs=-1)
@click.option("--container", "containers", multiple=True, help="Container to save (top layer, config, volumes)")
@click.option("--stack", "stacks", multiple=True, help="Containers with LABEL=VALUE, or a compose project name")
@click.option("--all", "all_", is_flag=True, help="Whole host")
@click.option("--with-images", is_flag=True, help="Include the images of the saved containers")
@click.option("--cron", default="15 3 * * *", show_default=True, help="When: five cron fields")
@click.option("--name", default="dockerbank-backup", show_default=True, help="Name of the job (/etc/cron.d/NAME)")
@click.option("--copy-to", metavar="URL", help="Off-site repository each run copies the snapshots to")
@click.option("--copy-password-file", type=click.Path(dir_okay=False), help="Passphrase of the off-site repository")
@click.option("--keep-last", type=int, default=0)
@click.option("--keep-daily", type=int, default=0)
@click.option("--keep-weekly", type=int, default=0)
@click.option("--cron-dir", default="/etc/cron.d", show_default=True, type=click.Path(file_okay=False))
@click.option("--log-dir", default="/var/log", show_default=True, type=click.Path(file_okay=False),
              help="Where the job appends its output (NAME.log)")
@click.option("--print", "print_only", is_flag=True, help="Print the cron file instead of installing it")
@repo_option
@click.pass_context
def schedule_cmd(ctx, volumes, containers, stacks, all_, with_images, cron, name, copy_to, copy_password_file,
                 keep_last, keep_daily, keep_weekly, cron_dir, log_dir, print_only, repo, password_file) -> None:
    """Write a cron job: backup create, then prune by the keep rules, then copy off-site."""
    from dockerbank.backup import schedule
    from dockerbank.backup.repository import open_repository

    engine = engine_of(ctx)
    absolute = lambda p: str(Path(p).resolve()) if p else None  # noqa: E731 - cron runs elsewhere
    local = repo or str(engine.config.root / "backups")
    if "://" not in local:
        local = str(Path(local.removeprefix("dir:")).resolve())
    what = [*volumes, *[x for c in containers for x in ("--container", c)],
            *[x for s in stacks for x in ("--stack", s)], *(["--all"] if all_ else []),
            *(["--with-images"] if with_images else [])]
    opts = schedule.ScheduleOptions(name, cron, what, local, absolute(password_file), copy_to,
                                    absolute(copy_password_file), keep_last, keep_daily, keep_weekly)
    # a job at 3 am cannot answer a prompt: prove now that the passphrases open the repositories
    for url, pw in ((local, opts.password_file), (copy_to, opts.copy_password_file or opts.password_file)):
        if url:
            repository = open_repository(engine, url, passphrase_from(pw, env=()) if pw else None)
            try:
                if repository.exists() and repository.encrypted:
                    if not pw:
                        raise InvalidArgument(f"{url} is encrypted: a scheduled job needs --password-file "
                                              "(--copy-password-file for the copy target)")
                    repository.codec  # noqa: B018 - WrongPassphrase now rather than at night
            finally:
                repository.close()
    text = schedule.cron_file(opts, engine.config.root, engine.config.run_root, log_dir=Path(log_dir).resolve())
    if print_only:
        click.echo(text, nl=False)
        return
    click.echo(f"installed {schedule.install(text, name, Path(cron_dir))}")


@click.command("restore")
@click.argument("snapshot", default="latest")
@click.option("--volume", "volumes", multiple=True, metavar="NAME[:NEWNAME]", help="Restore only this volume")
@click.option("--container", "containers", multiple=True, help="Restore only this container (and its volumes)")
@click.option("--force", is_flag=True, help="Overwrite non-empty volumes")
@repo_option
@click.pass_context
def restore_cmd(ctx, snapshot, volumes, containers, force, repo, password_file) -> None:
    """Restore a snapshot (default: the latest), whole or in parts, into this root."""
    from dockerbank.backup.restore import RestoreOptions, restore

    engine = engine_of(ctx)
    with _progress() as progress:
        report = restore(engine, _repo(ctx, repo, password_file), snapshot, RestoreOptions(list(volumes), list(containers), force),
                         progress)
    for kind, name in report.restored:
        click.echo(f"restored {kind} {name}")
    for warning in report.warnings:
        click.echo(f"WARNING: {warning}", err=True)


COMMANDS = {"backup": backup, "restore": restore_cmd}
