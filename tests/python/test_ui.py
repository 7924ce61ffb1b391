"""The accounts page (`/ui`) in a real browser: Debian's headless Chromium
driven by selenium, in front of the real `grantpool serve` and the fake
Google. What a user does: sign in with the admin key, see why an account
stopped serving, re-add it with a new token (or a Google sign-in) and watch
it serve again, without reloading the page.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import ADMIN_KEY, World

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
MODEL = "gemini-2.5-pro"

# Selenium uses the driver and browser it is given; never a download.
os.environ.setdefault("SE_OFFLINE", "true")

pytestmark = pytest.mark.skipif(
    not os.environ.get("CI") and not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()),
    reason="Debian's chromium and chromium-driver are needed (./dev test installs them)",
)


# ---- the browser -------------------------------------------------------------


def chrome():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="grantpool-chrome-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1480,1000",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_script_timeout(20)
    return driver, profile


def wait(driver, cond, timeout: float = 10.0, what: str = ""):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def safe(d):
        try:
            return cond(d)
        except StaleElementReferenceException:
            return False

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(safe, message=what)


def by_label(driver, text: str):
    """The form control whose <label> reads `text` (what a screen reader says)."""
    from selenium.webdriver.common.by import By

    label = driver.find_element(By.XPATH, f"//label[normalize-space()='{text}']")
    return driver.find_element(By.ID, label.get_attribute("for"))


def button(scope, name: str):
    """The visible button named `name` within `scope`."""
    from selenium.webdriver.common.by import By

    found = [b for b in scope.find_elements(By.XPATH, f".//button[normalize-space()='{name}']") if b.is_displayed()]
    assert found, f"no visible button named {name!r}"
    return found[0]


def row(driver, email: str):
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.XPATH, f"//tbody[@id='rows']/tr[.//div[@class='email' and normalize-space()='{email}']]")
    return rows[0] if rows else None


def state_of(driver, email: str) -> str | None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(5):
        try:
            r = row(driver, email)
            return r.find_element(By.CSS_SELECTOR, ".state").text if r else None
        except StaleElementReferenceException:
            continue  # the row was redrawn (a live update) meanwhile
    return None


def row_text(driver, email: str) -> str:
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(5):
        try:
            r = row(driver, email)
            return r.text if r else ""
        except StaleElementReferenceException:
            continue
    return ""


def wait_state(driver, email: str, state: str, timeout: float = 10.0):
    from selenium.common.exceptions import TimeoutException

    try:
        wait(driver, lambda d: state_of(d, email) == state, timeout)
    except TimeoutException:
        pytest.fail(f"{email} never showed `{state}` (shows {state_of(driver, email)!r})")


def click(driver, find):
    """Click what `find(driver)` returns, again if a live update redrew it."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(10):
        try:
            find(driver).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.05)
    find(driver).click()


def in_row(email: str, name: str):
    """A finder for the button `name` in the row of `email`."""
    return lambda d: button(row(d, email), name)


def sign_in(driver, url: str, key: str = ADMIN_KEY):
    from selenium.webdriver.common.by import By

    by_label(driver, "Admin key").send_keys(key)
    button(driver.find_element(By.ID, "signin-form"), "Sign in").click()


def ensure_signed_in(driver, world: World):
    from selenium.webdriver.common.by import By

    if not driver.current_url.startswith(world.url + "/ui"):
        driver.get(world.url + "/ui")
    wait(driver, lambda d: d.find_element(By.ID, "app-view").is_displayed() or d.find_element(By.ID, "signin-view").is_displayed())
    if driver.find_element(By.ID, "signin-view").is_displayed():
        sign_in(driver, world.url)
    wait(driver, lambda d: row(d, world.emails[0]) is not None or d.find_elements(By.CSS_SELECTOR, "#rows tr"), what="the table")
    wait(driver, lambda d: "live" in d.find_element(By.ID, "live").text, what="the event stream")


def close_dialogs(driver):
    driver.execute_script("for (const d of document.querySelectorAll('dialog[open]')) d.close()")


def mark(driver):
    """A value that survives only as long as the page is not reloaded."""
    token = f"mark-{time.time_ns()}"
    driver.execute_script("window.__noReload = arguments[0]", token)
    return token


def still(driver, token):
    assert driver.execute_script("return window.__noReload") == token, "the page was reloaded"


# ---- the proxy ---------------------------------------------------------------


def http(method: str, url: str, body=None, headers=None, timeout: float = 20.0):
    """(status, headers, JSON or text)."""
    data = None if body is None else json.dumps(body).encode()
    h = {"content-type": "application/json"} if body is not None else {}
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            status, hdrs = r.status, r.headers
    except urllib.error.HTTPError as e:
        raw, status, hdrs = e.read(), e.code, e.headers
    try:
        return status, hdrs, json.loads(raw)
    except ValueError:
        return status, hdrs, raw.decode(errors="replace")


def admin_state(world: World, email: str) -> dict:
    _, _, body = http("GET", world.url + "/admin/accounts", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    return next(a for a in body["accounts"] if a["email"] == email)


def generate(world: World, text: str = "hi"):
    body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    return http("POST", f"{world.url}/v1beta/models/{MODEL}:generateContent", body)


def account_file(world: World, email: str) -> dict:
    return json.loads((world.dir / "accounts" / f"{world.ids[email]}.json").read_text())


def revoke_and_use(world: World, email: str, timeout: float = 20.0):
    """Google revokes the account's grant (and with it its access tokens);
    requests go on until the proxy has found out and disabled it."""
    rt = account_file(world, email)["token"]["refresh_token"]
    world.fake.call("POST", "revoke", {"refresh_token": rt})
    world.fake.call("POST", "invalidate_access_tokens", {"email": email})
    deadline = time.monotonic() + timeout
    while admin_state(world, email)["state"] != "disabled":
        assert time.monotonic() < deadline, f"{email} was not disabled:\n{world.log()[-3000:]}"
        generate(world)


def session_of(driver, world: World) -> tuple[str, str]:
    """The browser's session cookie, and its CSRF token as the page gets it."""
    cookie = driver.get_cookie("grantpool_session")["value"]
    _, _, s = http("GET", world.url + "/ui/api/session", headers={"cookie": f"grantpool_session={cookie}"})
    return cookie, s["csrf"]


def secrets_of(world: World, extra=()) -> set[str]:
    out = set(extra) | {ADMIN_KEY}
    for f in (world.dir / "accounts").glob("*.json"):
        t = json.loads(f.read_text()).get("token", {})
        out |= {t.get("access_token", ""), t.get("refresh_token", "")}
    return {s for s in out if len(s) >= 8}


# ---- fixtures ----------------------------------------------------------------


@pytest.fixture(scope="module")
def uiworld():
    w = World(accounts=4)
    yield w
    w.close()


@pytest.fixture(scope="module")
def browser():
    driver, profile = chrome()
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser, uiworld):
    ensure_signed_in(browser, uiworld)
    yield browser
    close_dialogs(browser)


USED_TOKENS: list[str] = []


# ---- the tests ---------------------------------------------------------------


def test_sign_in_with_the_admin_key(browser, uiworld):
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(uiworld.url + "/")
    wait(driver, lambda d: d.current_url.endswith("/ui"), what="GET / leads to the page")
    wait(driver, lambda d: d.find_element(By.ID, "signin-view").is_displayed(), what="the sign-in form")
    sign_in(driver, uiworld.url, key="not-the-key")
    alert = driver.find_element(By.ID, "signin-error")
    wait(driver, lambda d: alert.is_displayed() and "wrong admin key" in alert.text, what="a wrong key is refused")
    assert by_label(driver, "Admin key").get_attribute("value") == ""

    sign_in(driver, uiworld.url)
    for email in uiworld.emails:
        wait(driver, lambda d: state_of(d, email) == "active", what=f"{email} active")
    wait(driver, lambda d: "live" in d.find_element(By.ID, "live").text, what="the event stream")

    cookie = driver.get_cookie("grantpool_session")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui", cookie
    assert "grantpool_session" not in driver.execute_script("return document.cookie")
    assert driver.execute_script("return localStorage.length + sessionStorage.length") == 0
    assert ADMIN_KEY not in driver.page_source
    assert by_label(driver, "Admin key").get_attribute("value") == ""


def test_a_disabled_account_shows_disabled_with_its_invalid_grant_reason(browser, uiworld):
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get("about:blank")
    revoke_and_use(uiworld, "user1@example.com")
    ensure_signed_in(driver, uiworld)
    wait_state(driver, "user1@example.com", "disabled")
    text = row_text(driver, "user1@example.com")
    assert "invalid_grant:" in text and "\nset " in text, text
    assert in_row("user1@example.com", "Re-add…")(driver)

    # The why panel: what failed, which classifier decided, what was done.
    click(driver, in_row("user1@example.com", "Why"))
    panel = driver.find_element(By.ID, "why-events")
    wait(driver, lambda d: "disable (invalid_grant" in panel.text, what=f"the verdict in the why panel: {panel.text}")
    text = panel.text
    assert "token refresh failed (HTTP 400)" in text and "by default" in text, text
    assert "disabled: invalid_grant:" in text, text
    assert "Token has been expired or revoked." in text, text
    close_dialogs(driver)


def test_re_add_with_a_new_refresh_token_turns_it_active_without_a_reload(page, uiworld):
    from selenium.webdriver.common.by import By

    driver = page
    email = "user1@example.com"
    wait_state(driver, email, "disabled")
    token = mark(driver)
    new_rt = "1//new-refresh-token-of-user1"
    USED_TOKENS.append(new_rt)
    uiworld.fake.add_account(email, new_rt)

    click(driver, in_row(email, "Re-add…"))
    dialog = driver.find_element(By.ID, "add-dialog")
    wait(driver, lambda d: dialog.is_displayed())
    assert email in dialog.text
    by_label(driver, "Refresh token").send_keys(new_rt)
    button(dialog, "Add account").click()
    out = driver.find_element(By.ID, "add-result")
    wait(driver, lambda d: "enabled again" in out.text, what=f"the result (shows {out.text!r})")
    assert by_label(driver, "Refresh token").get_attribute("value") == ""
    close_dialogs(driver)
    wait_state(driver, email, "active")
    still(driver, token)
    f = account_file(uiworld, email)
    assert f["disabled"] is False and not f.get("disabled_reason"), f
    # And it serves again.
    for _ in range(6):
        status, hdrs, _ = generate(uiworld)
        assert status == 200
        if hdrs.get("x-grantpool-account") == uiworld.ids[email]:
            break
    else:
        pytest.fail(f"{email} did not serve after the re-add")


def test_a_refused_token_says_why(page, uiworld):
    from selenium.webdriver.common.by import By

    driver = page
    button(driver, "Add an account…").click()
    dialog = driver.find_element(By.ID, "add-dialog")
    by_label(driver, "Refresh token").send_keys("1//a-token-google-does-not-know")
    button(dialog, "Add account").click()
    out = driver.find_element(By.ID, "add-result")
    wait(driver, lambda d: "refused: the token endpoint answered invalid_grant" in out.text, what=f"the refusal (shows {out.text!r})")
    assert "nothing was written" in out.text
    close_dialogs(driver)
    assert len(list((uiworld.dir / "accounts").glob("*.json"))) == len(uiworld.emails)


def test_a_revoke_while_the_page_is_open_changes_the_row_live(page, uiworld):
    driver = page
    email = "user2@example.com"
    wait_state(driver, email, "active")
    token = mark(driver)
    revoke_and_use(uiworld, email)
    disabled_at = time.monotonic()
    wait_state(driver, email, "disabled", timeout=5)
    took = time.monotonic() - disabled_at
    assert "invalid_grant:" in row_text(driver, email)
    still(driver, token)
    # Pushed, not polled: well within a second of the disable.
    assert took < 2.0, f"the row changed {took:.2f}s after the disable"


def test_take_off_put_back_labels_and_remove(page, uiworld):
    from selenium.webdriver.common.by import By

    driver = page
    email = "user3@example.com"
    wait_state(driver, email, "active")
    click(driver, in_row(email, "Take off"))
    wait_state(driver, email, "off the proxy")
    assert account_file(uiworld, email)["proxy_disabled"] is True
    assert "taken off by hand" in row_text(driver, email)
    click(driver, in_row(email, "Put back"))
    wait_state(driver, email, "active")
    assert account_file(uiworld, email)["proxy_disabled"] is False

    click(driver, in_row(email, "Why"))
    click(driver, lambda d: button(d.find_element(By.ID, "why-dialog"), "Edit labels…"))
    by_label(driver, "Weight").send_keys("3")
    by_label(driver, "Tier").send_keys("paid")
    by_label(driver, "Priority").send_keys("2")
    button(driver.find_element(By.ID, "labels-dialog"), "Save labels").click()
    wait(driver, lambda d: "weight 3" in row_text(d, email) and "tier paid" in row_text(d, email), what="labels in the row")
    assert account_file(uiworld, email)["labels"] == {"weight": "3", "tier": "paid", "priority": "2"}
    close_dialogs(driver)

    gone = "user4@example.com"
    click(driver, in_row(gone, "Why"))
    click(driver, lambda d: button(d.find_element(By.ID, "why-dialog"), "Remove…"))
    confirm = driver.find_element(By.ID, "confirm-dialog")
    wait(driver, lambda d: confirm.is_displayed() and gone in confirm.text)
    button(confirm, "Remove").click()
    wait(driver, lambda d: row(d, gone) is None, what="the removed row leaves")
    assert not (uiworld.dir / "accounts" / f"{uiworld.ids[gone]}.json").exists()


def _start_google(driver):
    from selenium.webdriver.common.by import By

    button(driver, "Add an account…").click()
    dialog = driver.find_element(By.ID, "add-dialog")
    button(dialog, "Sign in with Google").click()
    button(dialog, "Start Google sign-in").click()
    link = driver.find_element(By.ID, "google-link")
    wait(driver, lambda d: link.is_displayed() and link.get_attribute("href"))
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link.get_attribute("href")).query))
    assert q["code_challenge_method"] == "S256" and q["response_type"] == "code" and q["access_type"] == "offline", q
    return dialog, q


def test_google_sign_in_from_the_browser(page, uiworld):
    from selenium.webdriver.common.by import By

    driver = page
    email = "newcomer@example.com"
    dialog, q = _start_google(driver)
    # The browser is on the proxy's machine: Google's redirect lands on the proxy.
    assert q["redirect_uri"] == uiworld.url + "/ui/oauth/callback", q
    USED_TOKENS.append("1//signed-in-token-of-newcomer")
    uiworld.fake.call("POST", "codes", {
        "code": "code-newcomer", "email": email, "code_challenge": q["code_challenge"],
        "redirect_uri": q["redirect_uri"], "refresh_token": "1//signed-in-token-of-newcomer",
    })
    main = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.get(f"{q['redirect_uri']}?state={q['state']}&code=code-newcomer&scope=email")
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "Signed in" in body and f"added {email}" in body, body
    driver.close()
    driver.switch_to.window(main)
    out = driver.find_element(By.ID, "add-result")
    wait(driver, lambda d: f"added {email}" in out.text, what=f"the dialog hears of it (shows {out.text!r})")
    close_dialogs(driver)
    wait_state(driver, email, "active")
    assert json.loads(next(p for p in (uiworld.dir / "accounts").glob("*.json") if email in p.read_text()).read_text())["token"]["oauth_client"] == "antigravity"

    # From another machine: the redirect does not load there; the address is pasted.
    dialog, q = _start_google(driver)
    uiworld.fake.call("POST", "codes", {"code": "code-again", "email": email, "code_challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"]})
    by_label(driver, "Address Google sent the browser to").send_keys("http://127.0.0.1:1/elsewhere?state=wrong&code=x")
    button(dialog, "Finish sign-in").click()
    out = driver.find_element(By.ID, "add-result")
    wait(driver, lambda d: "another sign-in" in out.text, what=f"a wrong address is refused (shows {out.text!r})")
    field = by_label(driver, "Address Google sent the browser to")
    field.clear()
    field.send_keys(f"{q['redirect_uri']}?state={q['state']}&code=code-again")
    button(dialog, "Finish sign-in").click()
    wait(driver, lambda d: f"updated {email}" in out.text, what=f"the pasted sign-in (shows {out.text!r})")
    close_dialogs(driver)


def test_a_cross_origin_post_is_refused(page, uiworld):
    driver = page
    email = "user3@example.com"
    target = f"{uiworld.url}/ui/api/accounts/{uiworld.ids[email]}/off"
    cookie, csrf = session_of(driver, uiworld)

    # From another origin's page in the same browser (same site: the cookie goes along).
    driver.get(uiworld.fake.url + "/_fake/fast")
    outcome = driver.execute_async_script(
        """
        const [url, done] = arguments;
        const results = [];
        fetch(url, {method: 'POST', credentials: 'include', mode: 'no-cors'})
          .then(() => results.push('no-cors sent'), (e) => results.push('no-cors failed'))
          .then(() => fetch(url, {method: 'POST', credentials: 'include', headers: {'x-csrf-token': 'guess'}}))
          .then((r) => results.push('cors ' + r.status), (e) => results.push('cors blocked'))
          .then(() => done(results));
        """,
        target,
    )
    assert "cors 200" not in outcome, outcome
    time.sleep(0.3)
    assert admin_state(uiworld, email)["state"] == "active", "a cross-origin POST changed the account"
    assert "refused a cross-origin request" in uiworld.log() or "refused a same-site request" in uiworld.log(), uiworld.log()[-2000:]

    # The same, spelled out over HTTP: a valid session and token are not enough from elsewhere.
    base = {"cookie": f"grantpool_session={cookie}", "x-csrf-token": csrf}
    status, _, body = http("POST", target, headers={**base, "origin": "http://evil.example"})
    assert status == 403 and "cross-origin" in body["error"]["message"], body
    status, _, body = http("POST", target, headers={**base, "sec-fetch-site": "cross-site"})
    assert status == 403, body
    status, _, body = http("POST", target, headers={"cookie": base["cookie"], "origin": uiworld.url})
    assert status == 403 and "CSRF" in body["error"]["message"], body
    status, _, body = http("POST", target, headers={**base, "host": "evil.example"})
    assert status == 403 and "allowed_hosts" in json.dumps(body), body
    # Without Origin (not a browser), the session and its token do it.
    status, _, body = http("POST", target, headers=base)
    assert status == 200, body
    assert admin_state(uiworld, email)["state"] == "proxy_disabled"
    status, _, _ = http("POST", target.replace("/off", "/on"), headers={**base, "origin": uiworld.url})
    assert status == 200 and admin_state(uiworld, email)["state"] == "active"
    ensure_signed_in(driver, uiworld)


def test_no_token_in_the_dom_or_the_event_stream(page, uiworld):
    from selenium.webdriver.common.by import By

    driver = page
    cookie, csrf = session_of(driver, uiworld)
    headers = {"cookie": f"grantpool_session={cookie}"}

    # Listen to the stream while tokens are refreshed and accounts change.
    captured: list[bytes] = []
    stop = threading.Event()

    def listen():
        req = urllib.request.Request(uiworld.url + "/ui/api/stream", headers=headers)
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            while not stop.is_set():
                line = r.readline()
                if not line:
                    break
                captured.append(line)

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    time.sleep(0.5)
    uiworld.fake.call("POST", "invalidate_access_tokens", {})
    for i in range(6):
        generate(uiworld, f"refresh {i}")
    target = f"{uiworld.url}/ui/api/accounts/{uiworld.ids['user3@example.com']}"
    auth = {**headers, "x-csrf-token": csrf, "origin": uiworld.url}
    assert http("POST", target + "/off", headers=auth)[0] == 200
    assert http("POST", target + "/on", headers=auth)[0] == 200
    time.sleep(2.5)
    stop.set()
    stream = b"".join(captured).decode()
    for event in ("event: snapshot", "event: account", "event: note", "event: activity"):
        assert event in stream, f"{event} missing from:\n{stream[:3000]}"

    # Everything the page shows or holds, and every answer of its API.
    for email in ("user1@example.com", "user2@example.com"):
        click(driver, in_row(email, "Why"))
        wait(driver, lambda d: d.find_element(By.ID, "why-events").text.strip() != "")
        close_dialogs(driver)
    seen = [
        driver.page_source,
        driver.execute_script("return JSON.stringify([...document.querySelectorAll('input, textarea')].map((e) => e.value))"),
        driver.execute_script("return JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), document.cookie])"),
        stream,
    ]
    for path in ["/ui/api/accounts", "/ui/api/overview", "/ui/api/session", "/ui/api/traffic"] + [
        f"/ui/api/accounts/{i}/events" for e, i in uiworld.ids.items() if e != "user4@example.com"
    ]:
        status, _, body = http("GET", uiworld.url + path, headers=headers)
        assert status == 200, (path, body)
        seen.append(json.dumps(body))
    text = "\n".join(seen)
    secrets = secrets_of(uiworld, USED_TOKENS)
    assert len(secrets) >= 8, secrets
    leaked = [s[:10] + "…" for s in secrets if s in text]
    assert not leaked, f"tokens in the page, its data or the stream: {leaked}"


def test_screenshot_of_accounts_in_each_state(make_world, tmp_path):
    """A few accounts in each state, as docs/accounts-page.md shows them. Saved to
    $GRANTPOOL_SCREENSHOT when set (docs/accounts-page.png is made so)."""
    from selenium.webdriver.common.by import By

    emails = ["ada@example.com", "grace@example.com", "linus@example.com", "margaret@example.com", "ken@example.com", "barbara@example.com"]
    # Quota-aware selection and quota protection poll every account's quota.
    w = make_world(
        emails=emails,
        policy='[selector]\nplugin = "weighted"\n\n[[classifier]]\nplugin = "default"\n\n[quota_protection]\nthreshold = 0.1\nrefresh_secs = 1\n',
    )
    for email, model, frac in [
        ("ada@example.com", "gemini-2.5-pro", 0.82), ("ada@example.com", "gemini-2.5-flash", 0.97), ("ada@example.com", "claude-sonnet-4-6", 0.64),
        ("grace@example.com", "gemini-2.5-pro", 0.31), ("grace@example.com", "gemini-2.5-flash", 0.88),
        ("barbara@example.com", "gemini-2.5-pro", 0.07), ("barbara@example.com", "gemini-2.5-flash", 0.55),
        ("ken@example.com", "gemini-2.5-pro", 0.46),
    ]:
        w.fake.call("POST", "quota", {"email": email, "model": model, "remaining_fraction": frac})

    w.fake.call("POST", "faults", {"endpoint": "generate", "email": "linus@example.com", "kind": "rate_limit_exceeded", "retry_delay": "240s", "times": 0})
    w.fake.call("POST", "faults", {"endpoint": "generate", "email": "margaret@example.com", "kind": "validation_required", "times": 0})
    revoke_and_use(w, "ken@example.com")
    want = {"linus@example.com": "cooling_down", "margaret@example.com": "proxy_disabled", "ken@example.com": "disabled"}
    deadline = time.monotonic() + 30
    while any(admin_state(w, e)["state"] != s for e, s in want.items()):
        assert time.monotonic() < deadline, {e: admin_state(w, e)["state"] for e in want}
        generate(w)
    for i in range(30):
        generate(w, f"traffic {i}")

    driver, profile = chrome()
    try:
        driver.set_window_size(1480, 1160)
        ensure_signed_in(driver, w)
        cookie, csrf = session_of(driver, w)
        auth = {"cookie": f"grantpool_session={cookie}", "x-csrf-token": csrf, "origin": w.url}
        for email, labels in [("ada@example.com", {"weight": "3", "tier": "paid"}), ("grace@example.com", {"weight": "1", "tier": "free"})]:
            assert http("POST", f"{w.url}/ui/api/accounts/{w.ids[email]}/labels", {"labels": labels}, headers=auth)[0] == 200
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".quota .bar"), what="quota bars")
        for email, state in [("ken@example.com", "disabled"), ("margaret@example.com", "off the proxy"), ("linus@example.com", "cooling down"), ("barbara@example.com", "cooling down"), ("ada@example.com", "active")]:
            wait_state(driver, email, state)
        time.sleep(1.5)
        shot = tmp_path / "accounts-page.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 20_000
        if os.environ.get("GRANTPOOL_SCREENSHOT"):
            dest = Path(os.environ["GRANTPOOL_SCREENSHOT"])
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, dest)
            # And the why panel of the disabled account.
            click(driver, in_row("ken@example.com", "Why"))
            wait(driver, lambda d: "disable (invalid_grant" in d.find_element(By.ID, "why-events").text)
            time.sleep(0.5)
            driver.save_screenshot(str(dest.with_name(dest.stem + "-why.png")))
            close_dialogs(driver)

        # A policy saved broken: the overview says so, with file and line,
        # and Reload says it again; the running policy stays.
        (w.dir / "policy.toml").write_text('[selector]\nplugin = "weighted"\nconfig = { use_quota = "yes" }\n')
        result = driver.find_element(By.ID, "reload-result")
        wait(driver, lambda d: "refused" in result.text, timeout=15, what="the refused reload in the overview")
        assert "policy.toml:3" in result.text and "the running policy stays" in result.text, result.text
        click(driver, lambda d: d.find_element(By.ID, "reload"))
        wait(driver, lambda d: any("Reload refused" in t.text and "line 3" in t.text for t in d.find_elements(By.CSS_SELECTOR, ".toast")), what="the Reload button's answer")
        assert "selector: weighted" in driver.find_element(By.ID, "policy-text").text
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_a_banned_account_shows_googles_refusal_and_a_clickable_appeal(make_world):
    """Google's 2026 refusals are off the proxy (never disabled), and the
    page tells them apart: a Terms-of-Service ban shows its own words and
    the appeal address as a link; a licence refusal its own."""
    from selenium.webdriver.common.by import By

    w = make_world(emails=["ok@example.com", "ban@example.com", "lic@example.com"])
    w.fake.call("POST", "faults", {"endpoint": "generate", "email": "ban@example.com", "kind": "tos_violation", "times": 0})
    w.fake.call("POST", "faults", {"endpoint": "generate", "email": "lic@example.com", "kind": "license_required", "times": 0})
    deadline = time.monotonic() + 30
    while any(admin_state(w, e)["state"] != "proxy_disabled" for e in ("ban@example.com", "lic@example.com")):
        assert time.monotonic() < deadline, w.log()[-3000:]
        status, _, _ = generate(w)
        assert status == 200
    driver, profile = chrome()
    try:
        ensure_signed_in(driver, w)
        wait_state(driver, "ban@example.com", "off the proxy")
        wait_state(driver, "lic@example.com", "off the proxy")
        assert "banned: Terms of Service" in row_text(driver, "ban@example.com")
        assert "no licence" in row_text(driver, "lic@example.com")
        links = row(driver, "ban@example.com").find_elements(By.CSS_SELECTOR, ".reason a")
        assert [a.get_attribute("href") for a in links] == ["https://forms.gle/hGzM9MEUv2azZsrb9"], [a.get_attribute("outerHTML") for a in links]
        assert links[0].get_attribute("target") == "_blank" and "noopener" in links[0].get_attribute("rel")
        assert "banned" not in row_text(driver, "ok@example.com")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_an_accounts_outbound_proxy_is_set_from_the_page(make_world):
    """The Why dialog's `Outbound proxy` list (pool default + the configured
    proxies, with their health) sets the account's proxy: the row says
    `via NAME` at once and the account file names it; back to the pool's
    default, both forget it. The add form's list sends the token's check
    through the chosen proxy. A proxy URL's password never reaches the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    password = "proxy-pw-never-shown"
    extra = (
        f'[egress.proxies.home]\nurl = "socks5h://bob:{password}@127.0.0.1:9"\n\n'
        '[egress.proxies.office]\nurl = "http://127.0.0.1:9"\n'
    )
    w = make_world(emails=["p@example.com", "q@example.com"], extra=extra)
    email = "p@example.com"

    def proxy_list(dialog_id: str):
        dialog = driver.find_element(By.ID, dialog_id)
        label = dialog.find_element(By.XPATH, ".//label[normalize-space()='Outbound proxy']")
        return Select(dialog.find_element(By.ID, label.get_attribute("for")))

    driver, profile = chrome()
    try:
        ensure_signed_in(driver, w)
        wait_state(driver, email, "active")
        token = mark(driver)
        assert "via " not in row_text(driver, email)
        click(driver, in_row(email, "Why"))
        wait(driver, lambda d: d.find_element(By.ID, "why-egress").is_displayed(), what="the proxy list in the Why dialog")
        sel = proxy_list("why-dialog")
        names = [o.text for o in sel.options]
        assert names[0].startswith("pool default") and "direct" in names[0], names
        assert any(n.startswith("home (") for n in names) and any(n.startswith("office (") for n in names), names
        assert sel.first_selected_option.get_attribute("value") == ""

        sel.select_by_value("home")
        wait(driver, lambda d: "via home" in row_text(d, email), what=f"the row says via home (shows {row_text(driver, email)!r})")
        deadline = time.monotonic() + 5
        while account_file(w, email).get("egress") != "home":
            assert time.monotonic() < deadline, account_file(w, email)
            time.sleep(0.05)
        assert admin_state(w, email)["egress"] == "home"
        assert proxy_list("why-dialog").first_selected_option.get_attribute("value") == "home"
        assert "via " not in row_text(driver, "q@example.com")
        assert password not in driver.page_source

        proxy_list("why-dialog").select_by_value("")
        wait(driver, lambda d: "via home" not in row_text(d, email), what="the row forgets the proxy")
        deadline = time.monotonic() + 5
        while "egress" in account_file(w, email):
            assert time.monotonic() < deadline, account_file(w, email)
            time.sleep(0.05)
        still(driver, token)
        close_dialogs(driver)

        # The add form: the same list; the check of the token goes through
        # the chosen proxy (here nothing listens: refused, nothing written).
        new_rt = "1//refresh-token-of-r"
        w.fake.add_account("r@example.com", new_rt)
        driver.find_element(By.ID, "open-add").click()
        dialog = driver.find_element(By.ID, "add-dialog")
        wait(driver, lambda d: dialog.is_displayed())
        add = proxy_list("add-dialog")
        assert [o.get_attribute("value") for o in add.options] == ["", "home", "office"]
        add.select_by_value("office")
        by_label(driver, "Refresh token").send_keys(new_rt)
        button(dialog, "Add account").click()
        out = driver.find_element(By.ID, "add-result")
        wait(driver, lambda d: "office" in out.text and "bad" in out.get_attribute("class"), what=f"the refusal (shows {out.text!r})")
        assert row(driver, "r@example.com") is None
        assert not any(json.loads(f.read_text())["email"] == "r@example.com" for f in (w.dir / "accounts").glob("*.json"))
        assert password not in driver.page_source
        close_dialogs(driver)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    assert password not in w.log()


def _backfill_usage(w: World, keys: list[str], models: list[str], hours: int = 23):
    """Past hours of traffic written straight into the usage log (as its
    writer would), so that the screenshot's charts have a history."""
    import random
    import sqlite3

    rnd = random.Random(7)
    accounts = list(w.ids.values())
    db = sqlite3.connect(w.dir / "usage.db", timeout=10)
    try:
        def name_id(name: str) -> int:
            db.execute("INSERT INTO names (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (name,))
            return db.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()[0]

        proto, route = name_id("gemini"), name_id("generateContent")
        now_h = int(time.time() * 1000) // 3_600_000 * 3_600_000
        for back in range(1, hours + 1):
            hour = now_h - back * 3_600_000
            busy = 0.4 + 0.6 * abs(((back + 5) % 24) - 12) / 12  # a day's rhythm
            for ki, key in enumerate(keys):
                model = models[ki % len(models)]
                n = int(rnd.randint(3, 14) * busy * (len(keys) - ki))
                if n == 0:
                    continue
                acc = accounts[(back + ki) % len(accounts)]
                ids = [name_id(key), name_id(acc), name_id(model), name_id(model)]
                rows = []
                for i in range(n):
                    inp, out = rnd.randint(200, 3000), rnd.randint(50, 900)
                    rows.append((hour + i * 60_000, *ids, proto, route, 0, 200, inp, out, 0, 0, rnd.randint(300, 2500), 1))
                db.executemany("INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                db.execute(
                    "INSERT INTO hourly VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 0, 0, ?) ON CONFLICT DO UPDATE SET "
                    "requests = requests + excluded.requests, input = input + excluded.input, output = output + excluded.output, "
                    "latency_ms = latency_ms + excluded.latency_ms",
                    (hour, *ids, proto, len(rows), sum(r[9] for r in rows), sum(r[10] for r in rows), sum(r[13] for r in rows)),
                )
        db.commit()
    finally:
        db.close()


def test_usage_view_keys_made_used_and_revoked_from_the_page(make_world, tmp_path):
    """The Usage view: a key made in the New key… dialog (shown once, with
    Copy), used by a client straight through the proxy, its requests and
    tokens in the keys table, the totals and the chart; edited and revoked
    from the page, after which the proxy refuses it (401). The key never
    stays in the DOM once its dialog is closed. The accounts table shows the
    tokens each account served in its 5-hour and weekly windows.
    $GRANTPOOL_SCREENSHOT_USAGE: a screenshot of the view with some keys and
    traffic (docs/usage-page.png)."""
    from selenium.webdriver.common.by import By

    w = make_world(emails=["ada@example.com", "grace@example.com", "linus@example.com"])
    model = "gemini-2.5-flash"

    def use(key: str | None, n: int = 1, m: str = model):
        headers = {"x-goog-api-key": key} if key else {}
        body = {"contents": [{"role": "user", "parts": [{"text": "hello there, how are you?"}]}]}
        return [http("POST", f"{w.url}/v1beta/models/{m}:generateContent", body, headers=headers) for _ in range(n)]

    def key_row(d, name: str):
        found = d.find_elements(By.CSS_SELECTOR, f"#key-rows tr[data-key='{name}']")
        return found[0] if found else None

    def cell(d, name: str, cls: str) -> str:
        r = key_row(d, name)
        return r.find_element(By.CSS_SELECTOR, f"td.{cls}").text.split("\n")[0] if r else ""

    driver, profile = chrome()
    try:
        ensure_signed_in(driver, w)
        token = mark(driver)
        button(driver, "Usage").click()
        wait(driver, lambda d: d.find_element(By.ID, "usage-view").is_displayed(), what="the Usage view")
        wait(driver, lambda d: d.find_element(By.ID, "keys-empty").is_displayed(), what="no keys yet")

        # Make a key in the dialog; it is shown once, with Copy.
        button(driver, "New key…").click()
        dialog = driver.find_element(By.ID, "key-dialog")
        wait(driver, lambda d: dialog.is_displayed())
        by_label(driver, "Name").send_keys("ci-bot")
        by_label(driver, "Models").send_keys("gemini-*")
        by_label(driver, "Tokens per day").send_keys("5000000")
        by_label(driver, "Expires").send_keys("30d")
        button(dialog, "Create key").click()
        shown = driver.find_element(By.ID, "secret-dialog")
        wait(driver, lambda d: shown.is_displayed() and d.find_element(By.ID, "secret-value").text.startswith("gp-"), what="the new key, shown once")
        secret = driver.find_element(By.ID, "secret-value").text
        assert len(secret) > 20 and "will not be shown again" in shown.text, shown.text
        assert button(shown, "Copy")
        button(shown, "Done").click()
        wait(driver, lambda d: not shown.is_displayed())
        assert secret not in driver.page_source
        wait(driver, lambda d: key_row(d, "ci-bot") is not None, what="the key's row")
        text = key_row(driver, "ci-bot").text
        assert "active" in text and secret[:7] in text and "gemini-*" in text and "5,000,000" in text, text

        # A name that exists: the API's refusal in the dialog.
        button(driver, "New key…").click()
        by_label(driver, "Name").send_keys("ci-bot")
        button(dialog, "Create key").click()
        err = driver.find_element(By.ID, "key-result")
        wait(driver, lambda d: err.is_displayed() and "exists already" in err.text, what=f"the refusal in the dialog (shows {err.text!r})")
        close_dialogs(driver)

        # A client uses it, straight through the proxy.
        answers = use(secret, 3)
        assert all(status == 200 for status, _, _ in answers), answers
        served_by = {hdrs.get("x-grantpool-account") for _, hdrs, _ in answers}
        # Now that named keys exist, a request without one is refused.
        assert use(None)[0][0] == 401
        # A model outside the key's globs: 403 (not counted as usage of a model it may use).
        assert use(secret, m="claude-sonnet-4-6")[0][0] == 403

        wait(driver, lambda d: cell(d, "ci-bot", "today-requests") == "3", timeout=15, what=f"today's requests in the key's row (shows {cell(driver, 'ci-bot', 'today-requests')!r})")
        wait(driver, lambda d: cell(d, "ci-bot", "today-tokens") not in ("", "0"), timeout=15, what="today's tokens in the key's row")
        totals = lambda d: d.find_elements(By.CSS_SELECTOR, "#usage-totals-rows tr[data-group='ci-bot']")
        total_text = lambda d: totals(d)[0].text if totals(d) else ""
        wait(driver, lambda d: total_text(d).startswith("ci-bot 4 1 "), timeout=15,
             what=f"the key in the period's totals: 4 requests, the refused one an error (shows {total_text(driver)!r})")
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-tokens rect") and "ci-bot" in d.find_element(By.ID, "usage-legend").text, what="the key in the chart and its legend")

        # Grouped by model, the same traffic.
        from selenium.webdriver.support.ui import Select

        Select(driver.find_element(By.ID, "usage-by")).select_by_value("model")
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"#usage-totals-rows tr[data-group='{model}']"), what="totals by model")
        Select(driver.find_element(By.ID, "usage-by")).select_by_value("key")

        # Edit: a limit changes in place.
        click(driver, lambda d: button(key_row(d, "ci-bot"), "Edit…"))
        wait(driver, lambda d: dialog.is_displayed())
        assert by_label(driver, "Name").get_attribute("disabled") is not None
        rpm = by_label(driver, "Requests per minute")
        rpm.clear()
        rpm.send_keys("120")
        button(dialog, "Save").click()
        wait(driver, lambda d: not dialog.is_displayed(), what="the edit saved")
        wait(driver, lambda d: "120" in (key_row(d, "ci-bot").text if key_row(d, "ci-bot") else ""), what="the new limit in the row")

        # The accounts table: tokens each account served in its windows.
        button(driver, "Accounts").click()
        emails = [w.email_of(a) for a in served_by if a]
        assert emails, served_by

        def served_text(d):
            return " ".join(row(d, e).find_element(By.CSS_SELECTOR, ".served").text for e in emails if row(d, e))

        wait(driver, lambda d: "served" in served_text(d) and any(ch in "123456789" for ch in served_text(d).split(" tok")[0]), timeout=25,
             what=f"tokens served in the account's 5-hour window (shows {served_text(driver)!r})")

        if os.environ.get("GRANTPOOL_SCREENSHOT_USAGE"):
            # A few more keys and some traffic, so that the view looks lived in.
            cookie, csrf = session_of(driver, w)
            auth = {"cookie": f"grantpool_session={cookie}", "x-csrf-token": csrf, "origin": w.url}
            made = {}
            for form in [
                {"name": "claude-code", "models": [], "requests_per_minute": 60, "tokens_per_day": 0, "expires": "never"},
                {"name": "nightly-evals", "models": ["gemini-2.5-*"], "requests_per_minute": 0, "tokens_per_day": 2000000, "expires": "7d"},
                {"name": "alice-laptop", "models": ["gemini-*", "claude-*"], "requests_per_minute": 30, "tokens_per_day": 500000, "expires": "90d"},
            ]:
                status, _, body = http("POST", f"{w.url}/ui/api/keys", form, headers=auth)
                assert status == 201, body
                made[form["name"]] = body["key"]
            use(made["claude-code"], 4, "gemini-2.5-pro")
            use(made["nightly-evals"], 6)
            use(made["alice-laptop"], 2)
            _backfill_usage(w, ["claude-code", "ci-bot", "nightly-evals", "alice-laptop", "old-script"], ["gemini-2.5-pro", "gemini-2.5-flash", "claude-sonnet-4-6"])
            status, _, _ = http("POST", f"{w.url}/ui/api/keys/alice-laptop/revoke", headers=auth)
            assert status == 200

        # Revoke in the page, with a confirmation.
        button(driver, "Usage").click()
        wait(driver, lambda d: key_row(d, "ci-bot") is not None)
        click(driver, lambda d: button(key_row(d, "ci-bot"), "Revoke…"))
        confirm = driver.find_element(By.ID, "confirm-dialog")
        wait(driver, lambda d: confirm.is_displayed() and "ci-bot" in confirm.text)
        button(confirm, "Revoke").click()
        wait(driver, lambda d: key_row(d, "ci-bot") and "revoked" in key_row(d, "ci-bot").find_element(By.CSS_SELECTOR, ".state").text, what="the key shows revoked")
        assert not key_row(driver, "ci-bot").find_elements(By.XPATH, ".//button[normalize-space()='Revoke…']")
        status, _, body = use(secret)[0]
        assert status == 401 and "revoked" in json.dumps(body), body

        # The key is nowhere in the page after its dialog closed.
        seen = driver.page_source + driver.execute_script(
            "return JSON.stringify([...document.querySelectorAll('input, textarea')].map((e) => e.value))"
            " + JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), location.href])")
        assert secret not in seen and secret not in w.log()
        still(driver, token)

        if os.environ.get("GRANTPOOL_SCREENSHOT_USAGE"):
            driver.set_window_size(1480, 1300)
            wait(driver, lambda d: "claude-code" in d.find_element(By.ID, "usage-legend").text, timeout=15, what="the other keys in the chart")
            wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chart-tokens rect")) > 20, timeout=15, what="the history in the chart")
            driver.execute_script("document.getElementById('toasts').replaceChildren()")
            time.sleep(0.5)  # the last layout pass before the picture
            dest = Path(os.environ["GRANTPOOL_SCREENSHOT_USAGE"])
            dest.parent.mkdir(parents=True, exist_ok=True)
            assert driver.save_screenshot(str(dest)) and dest.stat().st_size > 20_000
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
