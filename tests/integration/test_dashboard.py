"""The dashboard in a real browser (Debian's chromium, headless, through Selenium and chromium-driver):
login, live logs, stop/start, roles, CSRF, redirects to the login; screenshots of the main pages
go to docs/dashboard/."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import require_binary

# the screenshots in the repository are refreshed with DOCKERBANK_UPDATE_SCREENSHOTS=1 (a plain run
# writes them to its temporary directory, so the suite leaves the work tree clean)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "dashboard"
PAGES = ["/", "/containers", "/images", "/volumes", "/networks", "/stacks", "/backups", "/events"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(condition, timeout: float = 15.0, what: str = "condition"):
    """Poll ``condition`` until it is true; a page still loading (element missing or replaced) is not yet."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (NoSuchElementException, StaleElementReferenceException):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def dashboard(ctr, root, tmp_path, request):
    """A dashboard of the test's root on a free loopback port: admin alice, viewer bob (over HTTPS
    with a self-signed certificate when the test is marked ``tls``)."""
    from dockerbank.registry.server.auth import make_htpasswd_line

    tls: list[str] = []
    if request.node.get_closest_marker("tls"):
        require_binary("openssl")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=127.0.0.1", "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                       check=True, capture_output=True)
        tls = ["--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")]

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(make_htpasswd_line("alice", "alice-pw", rounds=4) + "\n"
                        + make_htpasswd_line("bob", "bob-pw", rounds=4) + "\n")
    port = _free_port()
    log = open(tmp_path / "dashboard.log", "wb")
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    proc = subprocess.Popen([sys.executable, "-m", "dockerbank", "dashboard", "--listen", f"127.0.0.1:{port}",
                             "--htpasswd", str(htpasswd), "--viewers", "bob",
                             "--backup-repo", str(tmp_path / "backups"), *tls],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    def up():
        try:
            return requests.get(url + "/login", timeout=2, verify=False).status_code == 200
        except requests.ConnectionError:
            assert proc.poll() is None, (tmp_path / "dashboard.log").read_text()
            return False

    _until(up, 20, "the dashboard to listen")
    yield url, htpasswd
    proc.terminate()
    proc.wait(10)
    log.close()
    print((tmp_path / "dashboard.log").read_text())  # shown when the test failed


def _login(url: str, user: str, password: str) -> requests.Session:
    http = requests.Session()
    answer = http.post(url + "/login", data={"username": user, "password": password, "next": "/"},
                       allow_redirects=False)
    assert answer.status_code == 303, answer.text
    return http


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = require_binary("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--window-size=1360,860",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(require_binary("chromedriver")), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def test_unauthenticated_requests_go_to_the_login(dashboard, cli):
    url, _ = dashboard
    cid = cli("run", "-d", "--name", "idle", "busybox", "sleep", "300").stdout.decode().strip()
    for path in [*PAGES, f"/containers/{cid}", f"/containers/{cid}/logs", "/events/stream"]:
        answer = requests.get(url + path, allow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["Location"].startswith("/login?next="), path
    answer = requests.post(url + f"/containers/{cid}/stop", allow_redirects=False)
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/login")
    assert "running" in cli("inspect", "-f", "{{.State.Status}}", cid).stdout.decode()
    # a login sets a strict cookie; wrong passwords are rate-limited
    answer = requests.post(url + "/login", data={"username": "alice", "password": "alice-pw"}, allow_redirects=False)
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    codes = [requests.post(url + "/login", data={"username": "alice", "password": "nope"}).status_code
             for _ in range(6)]
    assert codes == [401] * 5 + [429]


@pytest.mark.tls
def test_tls_session_cookie_is_secure(dashboard):
    url, _ = dashboard
    assert url.startswith("https://")
    answer = requests.post(url + "/login", data={"username": "alice", "password": "alice-pw"},
                           allow_redirects=False, verify=False)
    assert answer.status_code == 303
    cookie = answer.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_csrf_and_viewer_are_refused(dashboard, cli):
    url, _ = dashboard
    cid = cli("run", "-d", "--name", "guarded", "busybox", "sleep", "300").stdout.decode().strip()
    admin = _login(url, "alice", "alice-pw")
    page = admin.get(url + f"/containers/{cid}")
    assert page.status_code == 200 and "guarded" in page.text
    for data in ({}, {"csrf": "forged"}):
        answer = admin.post(url + f"/containers/{cid}/stop", data=data, allow_redirects=False)
        assert answer.status_code == 403 and "CSRF" in answer.text
    viewer = _login(url, "bob", "bob-pw")
    token = _csrf(viewer.get(url + f"/containers/{cid}").text)
    answer = viewer.post(url + f"/containers/{cid}/stop", data={"csrf": token}, allow_redirects=False)
    assert answer.status_code == 403 and "viewer" in answer.text
    assert "running" in cli("inspect", "-f", "{{.State.Status}}", cid).stdout.decode()
    # the console is an admin's: a viewer is refused, and its socket wants the origin and the token
    assert viewer.get(url + f"/containers/{cid}/console", allow_redirects=False).status_code == 403
    socket_url = url + f"/containers/{cid}/console/socket"
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    answer = admin.get(socket_url, headers={**upgrade, "Origin": url}, allow_redirects=False)
    assert answer.status_code == 403 and "CSRF" in answer.text
    token = _csrf(admin.get(url + f"/containers/{cid}").text)
    answer = admin.get(socket_url, params={"csrf": token}, headers={**upgrade, "Origin": "http://evil.example"},
                       allow_redirects=False)
    assert answer.status_code == 403
    # a stack deploy without a token changes nothing
    answer = admin.post(url + "/stacks", data={"name": "x", "compose": "services: {}"}, allow_redirects=False)
    assert answer.status_code == 403


def test_refuses_a_public_address_without_tls(ctr, tmp_path):
    from dockerbank.registry.server.auth import make_htpasswd_line

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(make_htpasswd_line("alice", "pw", rounds=4) + "\n")
    result = ctr("dashboard", "--listen", "0.0.0.0:8091", "--htpasswd", str(htpasswd), check=False)
    assert result.returncode == 125
    assert result.stderr.decode().strip().count("\n") == 0 and "without TLS" in result.stderr.decode()


def test_browser_login_logs_stop_start_and_screenshots(dashboard, browser, cli, tmp_path):
    from selenium.webdriver.common.by import By

    shots = DOCS if os.environ.get("DOCKERBANK_UPDATE_SCREENSHOTS") == "1" else tmp_path / "screenshots"

    url, _ = dashboard
    published = _free_port()
    cid = cli("run", "-d", "--name", "web", "-p", f"{published}:80", "busybox", "sh", "-c",
              "echo started; exec sleep 300").stdout.decode().strip()
    cli("run", "-d", "--name", "batch-job", "busybox", "sh", "-c", "exit 3")
    cli("volume", "create", "lab-data")
    _until(lambda: "exited" in cli("inspect", "-f", "{{.State.Status}}", "batch-job").stdout.decode(), 10,
           "batch-job to exit")
    shots.mkdir(parents=True, exist_ok=True)

    def text(css: str) -> str:
        return browser.find_element(By.CSS_SELECTOR, css).text

    browser.get(url + "/containers")
    assert "/login" in browser.current_url
    browser.find_element(By.ID, "username").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys("alice-pw")
    browser.find_element(By.ID, "login").click()
    row = _until(lambda: browser.find_element(By.CSS_SELECTOR, 'tr[data-name="web"]').text, 10, "the login")
    assert browser.current_url.endswith("/containers") and "running" in row and str(published) in row
    browser.save_screenshot(str(shots / "containers.png"))

    browser.get(url + "/")
    attention = _until(lambda: text("#attention"), 10, "the overview")
    assert "exited with code 3" in attention and "batch-job" in attention
    host = text("#host")
    assert "free on the root" in host and "free on the backup repository" in host and "CPU load" in host
    browser.save_screenshot(str(shots / "overview.png"))

    # live logs: a line written after the page opened appears without a reload
    browser.find_element(By.LINK_TEXT, "Containers").click()
    _until(lambda: browser.find_element(By.LINK_TEXT, "web"), 10, "the containers page").click()
    _until(lambda: "started" in text("#logs"), 10, "the log tail")
    cli("exec", "web", "sh", "-c", "echo line-after-the-page-opened > /proc/1/fd/1")
    _until(lambda: "line-after-the-page-opened" in text("#logs"), 10, "the live log line")
    browser.save_screenshot(str(shots / "container.png"))

    browser.find_element(By.CSS_SELECTOR, 'button[value="stop"]').click()
    _until(lambda: text("#state") == "exited", 20, "the stop")
    assert "exited" in cli("inspect", "-f", "{{.State.Status}}", cid).stdout.decode()
    _until(lambda: browser.find_element(By.CSS_SELECTOR, 'button[value="start"]'), 10, "the start button").click()
    _until(lambda: text("#state") == "running", 20, "the start")
    assert "running" in cli("inspect", "-f", "{{.State.Status}}", cid).stdout.decode()

    browser.get(url + "/images")
    assert "busybox:latest" in _until(lambda: text("#images"), 10, "the images page")
    row = browser.find_element(By.XPATH, "//table[@id='images']//tr[td[contains(., 'busybox:latest')]]")
    row.find_element(By.CSS_SELECTOR, 'button[value="audit"]').click()
    _until(lambda: "audit of busybox:latest: " in text("#flash"), 30, "the audit")
    assert "high" in browser.find_element(By.XPATH, "//table[@id='images']//tr[td[contains(., 'busybox:latest')]]").text
    browser.save_screenshot(str(shots / "images.png"))
    browser.get(url + "/")
    assert "audit: 1 high (runs-as-root)" in _until(lambda: text("#attention"), 10, "the overview")
    browser.get(url + "/volumes")
    assert "lab-data" in _until(lambda: text("#volumes"), 10, "the volumes page")
    browser.find_element(By.CSS_SELECTOR, 'tr[data-name="lab-data"] button').click()
    _until(lambda: "saved in snapshot" in text("#flash"), 20, "the backup")
    assert "yes" in text('tr[data-name="lab-data"]')
    browser.save_screenshot(str(shots / "volumes.png"))

    browser.get(url + "/events")
    events = _until(lambda: text("#events"), 10, "the events page")
    assert re.search(r"dashboard:stop\s+web\s+alice", events) and re.search(r"dashboard:start\s+web\s+alice", events)
    assert re.search(r"dashboard:backup\s+lab-data\s+alice", events)
    browser.save_screenshot(str(shots / "events.png"))
    for name in ("overview", "containers", "container", "images", "volumes", "events"):
        assert (shots / f"{name}.png").stat().st_size > 10_000, name


def _browser_login(browser, url: str, user: str = "alice", password: str = "alice-pw") -> None:
    from selenium.webdriver.common.by import By

    browser.get(url + "/login")
    browser.find_element(By.ID, "username").send_keys(user)
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "login").click()
    _until(lambda: "/login" not in browser.current_url, 10, "the login")


STACK_FILE = """services:
  app:
    image: busybox
    command: sh -c 'echo stack-up; exec sleep 300'
    volumes:
      - appdata:/data
volumes:
  appdata: {}
"""


def test_browser_console_backup_restore_and_stacks(dashboard, browser, cli, tmp_path):
    """The console runs a command; a volume backed up and then damaged is restored from the
    backups page; a stack is deployed from a pasted file and removed with its volume."""
    from selenium.webdriver.common.by import By

    shots = DOCS if os.environ.get("DOCKERBANK_UPDATE_SCREENSHOTS") == "1" else tmp_path / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    url, _ = dashboard

    def text(css: str) -> str:
        return browser.find_element(By.CSS_SELECTOR, css).text

    cid = cli("run", "-d", "--name", "shell", "busybox", "sleep", "300").stdout.decode().strip()
    cli("volume", "create", "lab-data")
    cli("run", "--rm", "-v", "lab-data:/d", "busybox", "sh", "-c", "echo precious > /d/record")
    _browser_login(browser, url)

    # console: keys typed into xterm.js run in the container, the answer shows on its screen
    browser.get(url + f"/containers/{cid}")
    _until(lambda: browser.find_element(By.ID, "console-link"), 10, "the console link").click()
    _until(lambda: text("#console-state") == "connected", 15, "the console to connect")
    browser.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea").send_keys(
        "echo $((6*7))-from-the-console > /tmp/mark; cat /tmp/mark\n")
    screen = "const t = document.getElementById('console').dockerbankTerminal; let s = '';" \
             "for (let i = 0; i < t.buffer.active.length; i++) s += t.buffer.active.getLine(i).translateToString(true) + '\\n';" \
             "return s;"
    _until(lambda: "42-from-the-console" in browser.execute_script(screen), 15, "the console's answer")
    assert cli("exec", "shell", "cat", "/tmp/mark").stdout.decode().strip() == "42-from-the-console"
    browser.save_screenshot(str(shots / "console.png"))

    # back up the volume, damage it, restore it from the backups page (a job with progress)
    browser.get(url + "/volumes")
    _until(lambda: browser.find_element(By.CSS_SELECTOR, 'tr[data-name="lab-data"] button'), 10, "volumes").click()
    _until(lambda: "saved in snapshot" in text("#flash"), 30, "the backup")
    cli("run", "--rm", "-v", "lab-data:/d", "busybox", "sh", "-c", "echo damaged > /d/record")
    browser.get(url + "/backups")
    row = _until(lambda: browser.find_element(By.CSS_SELECTOR, "#snapshots tbody tr[data-id]"), 10, "the snapshot")
    row.find_element(By.CSS_SELECTOR, 'select[name="volume"] option[value="lab-data"]').click()
    row.find_element(By.CSS_SELECTOR, 'input[name="force"]').click()
    row.find_element(By.CSS_SELECTOR, 'button[value="restore"]').click()
    _until(lambda: "restored" in text("tr.job.focus .job-result"), 60, "the restore job")
    assert cli("run", "--rm", "-v", "lab-data:/d", "busybox", "cat", "/d/record").stdout.decode().strip() == "precious"
    _until(lambda: browser.find_element(By.CSS_SELECTOR, "#snapshots button[value='verify']"), 10, "verify").click()
    _until(lambda: "verified" in text("tr.job.focus .job-result"), 60, "the verify job")
    browser.get(url + "/backups")
    assert "ok" in _until(lambda: text("#snapshots tbody tr[data-id]"), 10, "the verified snapshot")
    browser.save_screenshot(str(shots / "backups.png"))

    # deploy a stack from a pasted file, see its service, remove it with its volume
    browser.get(url + "/stacks")
    _until(lambda: browser.find_element(By.ID, "stack-name"), 10, "the stacks page").send_keys("labstack")
    browser.find_element(By.ID, "stack-file").send_keys(STACK_FILE)
    browser.find_element(By.ID, "deploy-button").click()
    _until(lambda: "deployed" in text("#flash"), 60, "the deploy")
    service = _until(lambda: text('section.stack[data-name="labstack"] tr[data-service="app"]'), 10, "the service")
    assert "running" in service
    assert "labstack_appdata" in cli("volume", "ls", "-q").stdout.decode()
    browser.save_screenshot(str(shots / "stacks.png"))
    browser.get(url + "/networks")
    assert "labstack_default" in _until(lambda: text("#networks"), 10, "the networks page")
    browser.save_screenshot(str(shots / "networks.png"))
    browser.get(url + "/stacks")
    section = _until(lambda: browser.find_element(By.CSS_SELECTOR, 'section.stack[data-name="labstack"]'), 10, "stack")
    section.find_element(By.CSS_SELECTOR, 'input[name="volumes"]').click()
    section.find_element(By.CSS_SELECTOR, 'button[value="down"]').click()
    browser.switch_to.alert.accept()
    _until(lambda: "removed with its volumes" in text("#flash"), 60, "the down")
    assert "labstack" not in cli("ps", "-a", "--format", "{{.Names}}").stdout.decode()
    assert "labstack_appdata" not in cli("volume", "ls", "-q").stdout.decode()
    browser.get(url + "/events")
    events = _until(lambda: text("#events"), 10, "the events page")
    for action in ("dashboard:console", "dashboard:restore", "dashboard:deploy", "dashboard:down"):
        assert action in events, action
    for name in ("console", "backups", "stacks", "networks"):
        assert (shots / f"{name}.png").stat().st_size > 10_000, name


def test_the_dashboard_served_by_system_service(root, tmp_path):
    """``system service --dashboard``: one process answers the docker CLI on its socket and the
    dashboard over HTTP; a dashboard without users is refused before anything starts."""
    from dockerbank.registry.server.auth import make_htpasswd_line

    docker = require_binary("docker")
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(make_htpasswd_line("alice", "alice-pw", rounds=4) + "\n")
    sock, port = tmp_path / "d.sock", _free_port()
    env = dict(os.environ, DOCKERBANK_ROOT=str(root), DOCKERBANK_RUNROOT=str(root) + "-run")
    refused = subprocess.run([sys.executable, "-m", "dockerbank", "system", "service", "-H", f"unix://{sock}",
                              "--dashboard", f"127.0.0.1:{port}"], env=env, capture_output=True, timeout=60)
    assert refused.returncode == 125 and b"--dashboard-htpasswd" in refused.stderr and b"Traceback" not in refused.stderr
    log = open(tmp_path / "service.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "dockerbank", "system", "service", "-H", f"unix://{sock}",
                             "--dashboard", f"127.0.0.1:{port}", "--dashboard-htpasswd", str(htpasswd)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return sock.exists() and requests.get(url + "/login", timeout=2).status_code == 200
        except requests.ConnectionError:
            assert proc.poll() is None, (tmp_path / "service.log").read_text()
            return False

    try:
        _until(up, 30, "the service and its dashboard")
        version = subprocess.run([docker, "-H", f"unix://{sock}", "version", "--format", "{{.Server.Version}}"],
                                 capture_output=True, timeout=60, env=dict(os.environ, DOCKER_CONFIG=str(tmp_path)))
        assert version.returncode == 0 and version.stdout.strip(), version.stderr
        assert "Overview" in _login(url, "alice", "alice-pw").get(url + "/").text
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def test_catalog_on_the_stacks_page_and_a_refused_deploy(dashboard):
    """The catalog's entries with their license; a deploy with an unknown setting fails as a job
    with one line and creates nothing (a real deploy is tests/integration/test_catalog.py's)."""
    url, _ = dashboard
    admin = _login(url, "alice", "alice-pw")
    page = admin.get(url + "/stacks").text
    assert 'data-entry="postgresql"' in page and 'data-entry="redcap"' in page
    redcap = page[page.index('data-entry="redcap"'):].split("</tr>")[0]
    assert "stays in the house" in redcap
    token = _csrf(page)
    bad = admin.post(url + "/catalog/postgresql/deploy", data={"csrf": token, "settings": "no equals sign"},
                     allow_redirects=False)
    assert bad.status_code == 303 and "KEY%3DVALUE" in bad.headers["Location"].replace("=", "%3D")
    started = admin.post(url + "/catalog/postgresql/deploy", data={"csrf": token, "project": "labdb",
                                                                 "settings": "NO_SUCH_SETTING=1"}, allow_redirects=False)
    job = started.headers["Location"].split("job=")[1]
    state = _until(lambda: (lambda j: j if j["state"] != "running" else None)(admin.get(url + f"/jobs/{job}").json()),
                   60, "the deploy job")
    assert state["state"] == "failed" and "NO_SUCH_SETTING" in state["message"] and "\n" not in state["message"]
    assert 'data-name="labdb"' not in admin.get(url + "/stacks").text   # no stack was made
