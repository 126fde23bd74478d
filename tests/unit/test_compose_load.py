"""compose: interpolation, loading (discovery, .env, include, extends, merge, profiles),
validation errors (one line naming file and key path), normalisation and the plan. Pure."""

from __future__ import annotations

import pytest

from dockerbank.compose import plan as pl
from dockerbank.compose.interpolate import interpolate, parse_env_file
from dockerbank.compose.loader import LoadOptions, discover, find_cycle, load
from dockerbank.compose.model import config_document, normalize, topological_levels
from dockerbank.compose.schema import ComposeFileError
from dockerbank.errors import InvalidArgument


class FakeFiles:
    """Files by absolute path for the loader's ``read``/``exists``."""

    def __init__(self, files: dict[str, str]):
        self.files = files

    def read(self, path: str) -> str:
        if path not in self.files:
            raise FileNotFoundError(path)
        return self.files[path]

    def exists(self, path: str) -> bool:
        return path in self.files


def project_of(tree: dict[str, str], **kw):
    fake = FakeFiles(tree)
    opts = LoadOptions(cwd=kw.pop("cwd", "/p"), environ=kw.pop("environ", {}), **kw)
    loaded = load(opts, fake.read, fake.exists)
    return normalize(loaded, fake.read), loaded


# --- interpolation -------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("${A}", "a"), ("$A-x", "a-x"), ("${EMPTY:-d}", "d"), ("${EMPTY-d}", ""), ("${UNSET-d}", "d"),
    ("${UNSET:-${A}b}", "ab"), ("$$A", "$A"), ("${A:+alt}", "alt"), ("${UNSET:+alt}", ""), ("${UNSET}", ""),
    ("cost $ 5", "cost $ 5"), ("${A?err}", "a"),
])
def test_interpolate(text, expected):
    assert interpolate(text, {"A": "a", "EMPTY": ""}) == expected


def test_required_variable_names_the_place_and_message():
    with pytest.raises(InvalidArgument) as err:
        interpolate("${DB_PASSWORD:?set a password}", {"DB_PASSWORD": ""}, where="f.yml: services.db.environment")
    assert err.value.message == ("f.yml: services.db.environment: required variable DB_PASSWORD is missing a "
                                 "value: set a password")


def test_unset_variables_are_reported_once_per_name():
    seen = []
    interpolate("${X} $X ${Y:-d}", {}, missing=seen.append)
    assert seen == ["X", "X"]


def test_env_file_syntax():
    env = parse_env_file("# c\nA=1\nexport B='x y'\nC=\"a\\nb\"\nD=v # comment\n\n", ".env")
    assert env == {"A": "1", "B": "x y", "C": "a\nb", "D": "v"}
    with pytest.raises(InvalidArgument, match=r"\.env:1"):
        parse_env_file("not a pair", ".env")


# --- loading -------------------------------------------------------------------------------

def test_discovery_prefers_compose_yaml_and_walks_up():
    fake = FakeFiles({"/a/docker-compose.yml": "", "/a/compose.yaml": ""})
    assert discover("/a/b/c", fake.exists) == ["/a/compose.yaml"]
    with pytest.raises(ComposeFileError, match="no configuration file"):
        discover("/x", FakeFiles({}).exists)


def test_dotenv_and_shell_environment_and_project_name():
    files = {"/p/compose.yaml": "services:\n  web:\n    image: 'busybox:${TAG:-old}'\n    environment: ['X=${X}']\n",
             "/p/.env": "TAG=1.36\nX=from-dotenv\nCOMPOSE_PROJECT_NAME=My.Proj\n"}
    project, _ = project_of(files, environ={"X": "from-shell"})
    assert project.name == "myproj"
    assert project.services["web"]["image"] == "busybox:1.36"
    assert project.services["web"]["environment"] == {"X": "from-shell"}
    project, _ = project_of(files, project_name="other")
    assert project.name == "other"


def test_env_file_option_replaces_dotenv():
    files = {"/p/compose.yaml": "services:\n  web:\n    image: 'busybox:${TAG}'\n",
             "/p/.env": "TAG=a\n", "/p/prod.env": "TAG=b\n"}
    project, _ = project_of(files, env_files=["prod.env"])
    assert project.services["web"]["image"] == "busybox:b"


def test_override_files_merge_in_order():
    files = {
        "/p/compose.yaml": "services:\n  web:\n    image: a\n    command: x y\n    ports: ['80']\n"
                           "    environment: {A: '1', B: '2'}\n    volumes: ['d:/data', '/tmp:/t']\nvolumes: {d: {}}\n",
        "/p/over.yaml": "services:\n  web:\n    command: [z]\n    ports: ['81']\n    environment: [B=3]\n"
                        "    volumes: ['/srv:/data']\n",
    }
    project, _ = project_of(files, files=["compose.yaml", "over.yaml"])
    web = project.services["web"]
    assert web["command"] == ["z"]
    assert web["ports"] == [{"target": 80}, {"target": 81}]
    assert web["environment"] == {"A": "1", "B": "3"}
    assert web["volumes"] == ["/srv:/data:rw", "/tmp:/t:rw"]


def test_extends_in_file_and_from_another_file():
    files = {
        "/p/compose.yaml": "services:\n  base:\n    image: a\n    environment: {A: '1'}\n"
                           "  web:\n    extends: base\n    environment: {B: '2'}\n"
                           "  other:\n    extends: {file: common/c.yml, service: tpl}\n",
        "/p/common/c.yml": "services:\n  tpl:\n    image: t\n    volumes: ['./data:/data']\n",
    }
    project, _ = project_of(files)
    assert project.services["web"]["environment"] == {"A": "1", "B": "2"}
    assert project.services["web"]["image"] == "a"
    assert project.services["other"]["volumes"] == ["/p/common/data:/data:rw"]  # relative to its own file


def test_extends_cycle_is_an_error():
    files = {"/p/compose.yaml": "services:\n  a:\n    extends: b\n  b:\n    extends: a\n"}
    with pytest.raises(ComposeFileError, match="circular reference"):
        project_of(files)


def test_include_brings_resources_and_keeps_its_own_directory():
    files = {
        "/p/compose.yaml": "include: [db/compose.yaml]\nservices:\n  web:\n    image: a\n    depends_on: [db]\n",
        "/p/db/compose.yaml": "services:\n  db:\n    image: pg\n    volumes: ['./init:/init']\n",
    }
    project, _ = project_of(files)
    assert set(project.services) == {"db", "web"}
    assert project.services["db"]["volumes"] == ["/p/db/init:/init:rw"]


def test_profiles():
    files = {"/p/compose.yaml": "services:\n  web:\n    image: a\n  debug:\n    image: b\n    profiles: [dev]\n"}
    assert set(project_of(files)[0].services) == {"web"}
    assert set(project_of(files, profiles=["dev"])[0].services) == {"web", "debug"}
    files["/p/compose.yaml"] += "  tool:\n    image: c\n    depends_on: [debug]\n"
    with pytest.raises(ComposeFileError, match="services.tool.depends_on.debug: service 'debug' is not enabled"):
        project_of(files)


# --- bad input: one line naming the file and the key path --------------------------------------

@pytest.mark.parametrize("text, message", [
    ("services:\n  web:\n    imagee: a\n", "/p/compose.yaml: services.web.imagee: unknown key"),
    ("services:\n  web:\n    image: a\n    ports: 80\n", "/p/compose.yaml: services.web.ports: must be an array"),
    ("services:\n  web:\n    image: a\n    depends_on: [db]\n",
     "/p/compose.yaml: services.web.depends_on.db: undefined service 'db'"),
    ("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
     "/p/compose.yaml: services.a.depends_on: dependency cycle: a -> b -> a"),
    ("services:\n  web:\n    image: ${IMG:?set IMG}\n",
     "/p/compose.yaml: services.web.image: required variable IMG is missing a value: set IMG"),
    ("services:\n  web:\n    image: a\n    restart: sometimes\n", "services.web.restart: invalid restart policy"),
    ("services:\n  web:\n    image: a\n    depends_on:\n      db: {condition: service_ready}\n  db:\n    image: b\n",
     "services.web.depends_on.db.condition: must be one of"),
    ("services:\n  web:\n    image: a\n    networks: [nope]\n", "services.web.networks.nope: undefined network"),
    ("services:\n  web:\n    image: a\n    volumes: ['data:/d']\n", "services.web.volumes[0]: undefined volume 'data'"),
    ("services:\n  web:\n    build: {context: ., cache_from: [x]}\n",
     "services.web.build.cache_from: is in the Compose Specification but not supported"),
    ("services:\n  web: [a]\n", "services.web: must be a null or mapping"),
    ("services:\n  web:\n    image: a\n   bad: indent\n", "/p/compose.yaml: line 4, column 4: invalid YAML"),
    ("services:\n  web: {}\n", "services.web: has neither an image nor a build context"),
    ("servics: {}\n", "/p/compose.yaml: servics: unknown key"),
])
def test_bad_input(text, message):
    with pytest.raises(ComposeFileError) as err:
        project_of({"/p/compose.yaml": text})
    assert message in err.value.message
    assert "\n" not in err.value.message
    assert err.value.exit_code == 1


def test_extensions_are_kept():
    project, _ = project_of({"/p/compose.yaml": "x-common: {a: 1}\nservices:\n  web:\n    image: a\n"
                                                "    x-dockerbank-backup: dump\n"})
    doc = config_document(project)
    assert doc["x-common"] == {"a": 1}
    assert doc["services"]["web"]["x-dockerbank-backup"] == "dump"


def test_ports_normalised_as_docker_compose_1_29():
    project, _ = project_of({"/p/compose.yaml": "services:\n  web:\n    image: a\n    ports: ['8080:80', 9000, "
                                                "'127.0.0.1:8000-8001:80-81/udp', '53:53/udp']\n"})
    assert project.services["web"]["ports"] == [
        {"target": 80, "published": 8080}, {"target": 9000}, "127.0.0.1:8000:80/udp", "127.0.0.1:8001:81/udp",
        {"target": 53, "published": 53, "protocol": "udp"}]


def test_find_cycle_and_levels():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]
    project, _ = project_of({"/p/compose.yaml": "services:\n  web:\n    image: a\n    depends_on: [db, cache]\n"
                                                "  db:\n    image: a\n  cache:\n    image: a\n  proxy:\n"
                                                "    image: a\n    depends_on: [web]\n"})
    assert topological_levels(project) == [["cache", "db"], ["web"], ["proxy"]]
    assert topological_levels(project, ["web"]) == [["cache", "db"], ["web"]]


# --- the plan ------------------------------------------------------------------------------

def _existing(project, service, number, status="running", digest=None, image="img"):
    labels = pl.container_labels(project, service, number, digest or pl.config_hash(project, service))
    return pl.Existing(f"id-{service}-{number}", pl.container_name(project, service, number), labels, status, image)


def test_plan_unchanged_is_all_keep_and_changed_service_alone_recreated():
    project, _ = project_of({"/p/compose.yaml": "services:\n  web:\n    image: a\n  db:\n    image: b\n"})
    mine = [_existing(project, "web", 1), _existing(project, "db", 1)]
    for service in ("web", "db"):
        plan = pl.plan_service(project, service, [c for c in mine if c.service == service],
                               digest=pl.config_hash(project, service), image_id="img")
        assert [a.kind for a in plan.actions] == ["keep"] and not plan.changes
    changed, _ = project_of({"/p/compose.yaml": "services:\n  web:\n    image: a\n    command: x\n  db:\n    image: b\n"})
    assert pl.config_hash(changed, "db") == pl.config_hash(project, "db")
    assert pl.config_hash(changed, "web") != pl.config_hash(project, "web")
    plan = pl.plan_service(changed, "web", [mine[0]], digest=pl.config_hash(changed, "web"), image_id="img")
    assert [a.kind for a in plan.actions] == ["recreate"]
    plan = pl.plan_service(project, "web", [mine[0]], digest=pl.config_hash(project, "web"), image_id="new-image")
    assert [a.kind for a in plan.actions] == ["recreate"]


def test_plan_scale_up_down_and_restart_stopped():
    project, _ = project_of({"/p/compose.yaml": "services:\n  web:\n    image: a\n"})
    digest = pl.config_hash(project, "web")
    mine = [_existing(project, "web", 1), _existing(project, "web", 3, status="exited")]
    plan = pl.plan_service(project, "web", mine, digest=digest, image_id="img", scale=3)
    assert [(a.kind, a.number) for a in plan.actions] == [("keep", 1), ("start", 3), ("create", 2)]
    plan = pl.plan_service(project, "web", mine, digest=digest, image_id="img", scale=1)
    assert [(a.kind, a.number) for a in plan.actions] == [("keep", 1), ("remove", 3)]
    plan = pl.plan_service(project, "web", mine[:1], digest=digest, image_id="img", force_recreate=True)
    assert [a.kind for a in plan.actions] == ["recreate"]


def test_labels_follow_docker_compose_and_carry_the_backup_mode():
    project, _ = project_of({"/p/compose.yaml": "services:\n  db:\n    image: a\n    x-dockerbank-backup: dump\n"
                                                "    labels: [team=x]\n"})
    labels = pl.container_labels(project, "db", 2, "h")
    assert labels["com.docker.compose.project"] == "p" and labels["com.docker.compose.service"] == "db"
    assert labels["com.docker.compose.container-number"] == "2" and labels["com.docker.compose.oneoff"] == "False"
    assert labels["com.docker.compose.config-hash"] == "h" and labels["team"] == "x"
    assert labels["com.docker.compose.project.config_files"] == "/p/compose.yaml"
    assert labels[pl.LABEL_BACKUP] == "dump"
    assert pl.container_name(project, "db", 2) == "p_db_2"


def test_durations_and_healthcheck():
    assert pl.parse_duration("1m30s") == 90 and pl.parse_duration("500ms") == 0.5 and pl.parse_duration(3) == 3
    with pytest.raises(ComposeFileError, match="f: services.a.healthcheck.interval: invalid duration"):
        pl.parse_duration("soon", "f", "services.a.healthcheck.interval")
    hc = pl.healthcheck_config({"healthcheck": {"test": "test -f /ok", "interval": "1s", "retries": 3}}, "f", "p")
    assert hc == {"Test": ["CMD-SHELL", "test -f /ok"], "Interval": 1_000_000_000, "Retries": 3}
    assert pl.healthcheck_config({"healthcheck": {"disable": True}}, "f", "p") == {"Test": ["NONE"]}


def test_backup_mode_of_a_container():
    from dockerbank.backup.consistency import MODE_LABEL, mode_of

    assert mode_of({MODE_LABEL: "dump"}, "pause") == "dump"
    assert mode_of({MODE_LABEL: "bogus"}, "pause") == "pause" and mode_of({}, "stop") == "stop"


def test_recreated_container_keeps_its_anonymous_volumes():
    from dockerbank.compose.service import carry_anonymous
    from dockerbank.volume import mounts as mnt

    specs = [mnt.parse_volume("/cache"), mnt.parse_volume("named:/data"), mnt.parse_volume("/fresh")]
    out = carry_anonymous(specs, {"/cache": "abc123", "/var/lib/x": "def456", "/gone": "zzz"}, {"/var/lib/x"})
    assert [(s.target, s.source) for s in out] == [("/cache", "abc123"), ("/data", "named"), ("/fresh", ""),
                                                  ("/var/lib/x", "def456")]
