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
PAGES = ["/", "/containers", "/images", "/volumes", "/events"]


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
    cid = cli("run", "-d", "--name", "web", "-p", "18080:80", "busybox", "sh", "-c",
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
    assert browser.current_url.endswith("/containers") and "running" in row and "18080" in row
    browser.save_screenshot(str(shots / "containers.png"))

    browser.get(url + "/")
    attention = _until(lambda: text("#attention"), 10, "the overview")
    assert "exited with code 3" in attention and "batch-job" in attention
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
    browser.save_screenshot(str(shots / "images.png"))
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
