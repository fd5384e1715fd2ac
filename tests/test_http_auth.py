"""Credentials: HTTP Basic auth from URL user-info and netrc, against an index that requires it,
and no password or token in anything machci writes or prints."""

from __future__ import annotations

import base64
import contextlib
import json
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from machci.notices import warn
from machci.redaction import redact, strip_credentials
from machci.untrusted import url_problem
from tests.fixtures.index import Index
from tests.helpers import SNAPSHOT, Run, lock, run

USER = "ci-bot"
PASSWORD = "hunter2:@/%x"  # every character that must be percent-encoded in user-info
TOKEN = "tok-4f9a2c"


def with_login(url: str, user: str = USER, password: str = PASSWORD) -> str:
    login = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return url.replace("http://", f"http://{login}@", 1)


def basic(user: str = USER, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def authed(index: Index) -> Index:
    """The index requiring Basic auth, with a package from .metadata and one from its wheel."""
    index.auth = (USER, PASSWORD)
    index.publish("app", "1.0", requires_dist=("dep",))
    index.publish("dep", "1.0", serve_metadata=False)
    return index


def lock_with(index: Index, project: Path, url: str, *args: str) -> Run:
    return lock(index, project, "app\n", "--index-url", url, *args)


def write_netrc(path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path.write_text(text)
    monkeypatch.setenv("NETRC", str(path))


def test_user_info_authenticates_pages_metadata_and_files(index: Index, tmp_path: Path) -> None:
    authed(index)
    result = lock_with(index, tmp_path, with_login(index.url))
    assert result.versions() == {"app": "1.0", "dep": "1.0"}
    paths = [r.path for r in index.log]
    assert "/simple/app/" in paths
    assert "/files/app-1.0-py3-none-any.whl.metadata" in paths
    assert "/files/dep-1.0-py3-none-any.whl" in paths
    assert {r.headers.get("Authorization") for r in index.log} == {basic()}


def test_the_cache_does_not_depend_on_how_credentials_were_given(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authed(index)
    online = lock_with(index, tmp_path, with_login(index.url))
    write_netrc(tmp_path / "netrc", f"machine 127.0.0.1 login {USER} password x\n", monkeypatch)
    offline = lock_with(index, tmp_path, index.url, "--offline")  # pages keyed without them
    assert offline.out == online.out


def test_a_redirect_to_a_signed_url_is_not_recorded(index: Index, tmp_path: Path) -> None:
    authed(index)
    signed = f"{index.url}/app/?sig={TOKEN}"
    index.fault("/simple/app/", status=302, headers={"Location": signed}, times=1)
    result = lock_with(index, tmp_path, with_login(index.url))
    assert result.versions() == {"app": "1.0", "dep": "1.0"}
    assert f"/simple/app/?sig={TOKEN}" in [r.path for r in index.log]
    for path in (tmp_path / ".cache").rglob("*"):
        assert not path.is_file() or TOKEN.encode() not in path.read_bytes()


@pytest.mark.parametrize(
    "entry",
    [
        f"machine 127.0.0.1 login {USER} password {PASSWORD}\n",
        f"machine example.org login x password y\ndefault login {USER} password {PASSWORD}\n",
    ],
)
def test_netrc_supplies_the_credentials(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: str
) -> None:
    authed(index)
    write_netrc(tmp_path / "netrc", entry, monkeypatch)
    result = lock_with(index, tmp_path / "project", index.url)
    assert result.versions() == {"app": "1.0", "dep": "1.0"}
    assert {r.headers.get("Authorization") for r in index.log} == {basic()}


def test_the_urls_own_user_info_wins_over_netrc(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authed(index)
    write_netrc(tmp_path / "netrc", "machine 127.0.0.1 login other password stale\n", monkeypatch)
    assert lock_with(index, tmp_path / "project", with_login(index.url)).code == 0


def test_a_wrong_password_is_one_line_naming_the_redacted_url(index: Index, tmp_path: Path) -> None:
    authed(index)
    result = lock_with(index, tmp_path, with_login(index.url, password="wrong-one"))
    assert result.code == 2
    redacted = index.url.replace("http://", "http://***@")
    assert result.err == (
        f"machci: error: {redacted}/app/: the index answered HTTP 401; it refused the credentials\n"
    )


def test_missing_credentials_say_where_to_put_them(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authed(index)
    result = lock_with(index, tmp_path, index.url)
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert f"{index.url}/app/: the index answered HTTP 401; it needs credentials" in result.err
    netrc = tmp_path / "netrc"
    hint = f"put them in the index URL as user-info or in the netrc file ({netrc})"
    monkeypatch.setenv("NETRC", str(netrc))
    assert hint in lock_with(index, tmp_path, index.url).err
    write_netrc(netrc, f"machine 127.0.0.1 login {USER} password no\n", monkeypatch)
    refused = lock_with(index, tmp_path, index.url)
    assert "it refused the credentials" in refused.err


def test_a_broken_netrc_is_one_line_naming_its_line(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    write_netrc(netrc, "machine 127.0.0.1 login u password p\nbogus x\n", monkeypatch)
    result = lock_with(index, tmp_path / "project", index.url)
    assert result.code == 2
    assert result.err == (
        f"machci: error: {netrc}:2: cannot read the netrc file: an unexpected word (not shown:"
        " it may be a password; a password with spaces must be in double quotes)\n"
    )


SECRET = "s3cretpw"


def secret_forms(user: str, password: str) -> list[str]:
    """The ways a password can leak: as typed, percent-encoded, in a Basic header's base64."""
    return [
        SECRET,
        quote(SECRET, safe=""),
        base64.b64encode(f"{user}:{password}".encode()).decode(),
        base64.b64encode(password.encode()).decode().rstrip("="),
    ]


@pytest.mark.parametrize(
    "text",
    [
        f"machine 127.0.0.1 login u password {SECRET}\nbogus x\n",
        f"machine 127.0.0.1 login u password two {SECRET}\n",  # a space in the password
        f"machine 127.0.0.1 login u {SECRET}\n",  # the word `password` forgotten
        f"{SECRET}\n",
    ],
)
def test_a_broken_netrc_never_shows_its_password(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    netrc = tmp_path / "netrc"
    write_netrc(netrc, text, monkeypatch)
    result = lock_with(index, tmp_path / "project", index.url)
    assert result.code == 2
    assert result.err.startswith(f"machci: error: {netrc}:")
    assert "cannot read the netrc file" in result.err
    assert result.err.count("\n") == 1
    for form in secret_forms("u", SECRET):
        assert form not in result.out + result.err, form
    assert not (tmp_path / "project" / "lock.json").exists()


@pytest.mark.parametrize(
    "password",
    [
        SECRET,
        f"{SECRET}/x",
        f"x/{SECRET}",
        f"{SECRET} x",
        f"x {SECRET}",
        f"{SECRET}#x",
        f"x?{SECRET}",
    ],
)
@pytest.mark.parametrize("host", ["[bad", "127.0.0.1:99999", "host/simple"])
def test_an_invalid_index_url_never_shows_its_password(
    tmp_path: Path, password: str, host: str
) -> None:
    """As an option, as a requirements file's line and in machci.yaml, wherever the user-info
    would end for a parser (a `/`, `#`, `?` or space inside the password cuts it short)."""
    url = f"http://user:{password}@{host}"
    if url_problem(url) is None:  # an index URL after all: nothing to refuse
        return
    (tmp_path / "requirements.txt").write_text("app\n")
    (tmp_path / "from-file.txt").write_text(f"--index-url {url}\napp\n")
    (tmp_path / "yaml").mkdir()
    (tmp_path / "yaml" / "requirements.txt").write_text("app\n")
    (tmp_path / "yaml" / "machci.yaml").write_text(
        f"requirements: [requirements.txt]\ndata:\n  source: pypi\n  index: {json.dumps(url)}\n"
    )
    with contextlib.chdir(tmp_path):
        results = [
            run("lock", "-r", "requirements.txt", "--index-url", url),
            run("lock", "-r", "requirements.txt", "--extra-index-url", url),
            run("lock", "-r", "from-file.txt"),
            run("init", "--index-url", url),
        ]
    with contextlib.chdir(tmp_path / "yaml"):
        results.append(run("lock"))
    for result in results:
        assert result.code == 2, result
        assert result.err.count("\n") == 1, result
        assert "URL" in result.err, result
        for form in secret_forms("user", password):
            assert form not in result.out + result.err, (result, form)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "from-file.txt",
        "requirements.txt",
        "yaml",
    ]


@pytest.mark.parametrize("password", [SECRET, f"{SECRET}/x", f"x#{SECRET}"])
@pytest.mark.parametrize("scheme", ["http", "ftp"])
@pytest.mark.parametrize("host", ["[bad", "host"])
def test_a_broken_direct_reference_never_shows_its_password(
    tmp_path: Path, password: str, scheme: str, host: str
) -> None:
    """Named, bare or in packagesExtra, a direct reference that cannot be used is one message
    without the password (a broken host used to raise a traceback before it was checked)."""
    url = f"{scheme}://user:{password}@{host}/app-1.0-py3-none-any.whl"
    if scheme == "http" and url_problem(url) is None:
        return
    (tmp_path / "named.txt").write_text(f"app @ {url}\n")
    (tmp_path / "bare.txt").write_text(f"{url}\n")
    (tmp_path / "yaml").mkdir()
    (tmp_path / "yaml" / "requirements.txt").write_text("app\n")
    (tmp_path / "yaml" / "machci.yaml").write_text(
        f"requirements: [requirements.txt]\npackagesExtra:\n  - url: {json.dumps(url)}\n"
    )
    with contextlib.chdir(tmp_path):
        results = [run("lock", "-r", "named.txt"), run("lock", "-r", "bare.txt")]
    with contextlib.chdir(tmp_path / "yaml"):
        results.append(run("lock"))
    for result in results:
        assert result.code == 2, result
        assert result.err.startswith("machci: error: "), result
        assert result.err.count("\n") == 1, result
        for form in secret_forms("user", password):
            assert form not in result.out + result.err, (result, form)


def test_files_on_another_host_get_no_credentials(index: Index, tmp_path: Path) -> None:
    authed(index)
    files = Index(tmp_path / "files")
    files.start()
    try:
        for dist in index.dists:
            files.add(dist)
        index.files_base = files.files_url
        result = lock_with(index, tmp_path / "project", with_login(index.url))
        assert result.versions() == {"app": "1.0", "dep": "1.0"}
        assert {r.path for r in files.log} == {
            "/files/app-1.0-py3-none-any.whl.metadata",
            "/files/dep-1.0-py3-none-any.whl",
        }
        assert [r.headers.get("Authorization") for r in files.log] == [None, None]
    finally:
        files.stop()


def test_a_redirect_to_another_host_drops_the_credentials(index: Index, tmp_path: Path) -> None:
    authed(index)
    mirror = Index(tmp_path / "mirror")
    mirror.start()
    try:
        for dist in index.dists:
            mirror.add(dist)
        index.fault("/simple/dep/", status=302, headers={"Location": f"{mirror.url}/dep/"})
        result = lock_with(index, tmp_path / "project", with_login(index.url))
        assert result.versions() == {"app": "1.0", "dep": "1.0"}
        assert "/simple/dep/" in [r.path for r in mirror.log]
        assert {r.headers.get("Authorization") for r in mirror.log} == {None}
    finally:
        mirror.stop()


def test_init_writes_the_index_without_credentials(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authed(index)
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("app\n")
    with contextlib.chdir(project):
        assert run("init", "--index-url", with_login(index.url), "--snapshot", SNAPSHOT).code == 0
        assert f"  index: {index.url}\n" in Path("machci.yaml").read_text()
        write_netrc(tmp_path / "netrc", f"default login {USER} password {PASSWORD}\n", monkeypatch)
        assert run("sync", "--cache-dir", ".cache").code == 1


def test_a_signed_direct_reference_resolves_and_its_token_is_dropped(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = index.publish("direct", "1.0").filename
    url = f"{index.files_url}/{wheel}"
    monkeypatch.setenv("FILES_TOKEN", TOKEN)
    reference = f"direct @ {url}?token=${{FILES_TOKEN}}#sha256={index.sha256(wheel)}"
    result = lock(index, tmp_path, f"{reference}\n")
    assert result.packages()["direct"]["file"]["url"] == url
    assert result.lock["systems"]["x86_64-linux"]["roots"][0]["requirement"] == (
        f"direct @ {url}#sha256={index.sha256(wheel)}"
    )
    assert TOKEN not in result.out + result.err


def test_no_password_or_token_in_anything_written_or_printed(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authed(index)
    signed = Index(tmp_path / "signed")  # another host, where only a token in the URL works
    signed.start()
    try:
        signed.auth, signed.token = ("nobody", "-"), TOKEN
        wheel = signed.publish("direct", "1.0", serve_metadata=False).filename
        url = f"{signed.files_url}/{wheel}"
        reference = f"{url}?token=${{FILES_TOKEN}}"
        reference += f"#sha256={signed.sha256(wheel)}"
        outputs = run_everything(index, tmp_path / "project", reference, monkeypatch)
        # The token was needed, and sent: the wheel was fetched with it.
        assert [(r.path, r.headers.get("Authorization")) for r in signed.log] == [
            (f"/files/{wheel}?token={TOKEN}", None)
        ]
    finally:
        signed.stop()
    assert [o.code for o in outputs] == [0, 1, 0, 0, 2, 1, 2], outputs
    project = tmp_path / "project"
    written = [p for p in project.rglob("*") if p.is_file()]
    assert {"lock.json", "default.nix"} <= {p.name for p in written}
    assert any(".cache" in p.parts and "pages" in p.parts for p in written)
    secrets = [PASSWORD, quote(PASSWORD, safe=""), TOKEN, basic().split()[1]]
    for path in written:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, (path, secret)
    for output in outputs:
        for secret in secrets:
            assert secret not in output.out + output.err, (output, secret)
    assert f'"{url}"' in (project / "lock.json").read_text()
    assert "?token=***#sha256=" in outputs[5].err  # the conflict quotes the requirement


def run_everything(
    index: Index, project: Path, reference: str, monkeypatch: pytest.MonkeyPatch
) -> list[Run]:
    """lock (JSON, file, collisions, summary), sync, why, a wrong password, a conflict quoting
    the reference and an offline miss, with the token coming from the environment."""
    monkeypatch.setenv("FILES_TOKEN", TOKEN)
    project.mkdir()
    (project / "requirements.txt").write_text(f"app\ndirect @ {reference}\n")
    (project / "conflict.txt").write_text(f"direct @ {reference}\ndirect>=2\n")
    options = ["-r", "requirements.txt", "--cache-dir", ".cache", "--snapshot", SNAPSHOT]
    login = ["--index-url", with_login(index.url)]
    with contextlib.chdir(project):
        return [
            run("lock", *options, *login, "--json", "-o", "lock.json", "--check-collisions"),
            run("sync", *options, *login),
            run("why", "direct", *options, *login),
            run("lock", *options, *login),
            run("lock", *options, "--index-url", with_login(index.url, password="bad")),
            run("lock", *options, *login, "-r", "conflict.txt"),
            run("lock", *options, *login, "--offline", "--cache-dir", "empty"),
        ]


@pytest.mark.parametrize(
    "url, shown, stored",
    [
        ("https://h/x?token=abc", "https://h/x?token=***", "https://h/x"),
        (
            "https://u:p@h/x.whl?a=1&Access_Token=z&b=2#sha256=00",
            "https://***@h/x.whl?a=1&Access_Token=***&b=2#sha256=00",
            "https://h/x.whl?a=1&b=2#sha256=00",
        ),
        (
            "https://b.s3/x.whl?X-Amz-Signature=q&KEY=k&sig=s&password=p&client_secret=c",
            "https://b.s3/x.whl?X-Amz-Signature=***&KEY=***&sig=***&password=***&client_secret=***",
            "https://b.s3/x.whl",
        ),
        ("https://h/x?monkey=1&keyring=2", "https://h/x?monkey=1&keyring=2", None),
        (
            'app @ https://u:p@ss@h/a.whl?api_key=k ; python_version > "3"',
            'app @ https://***@h/a.whl?api_key=*** ; python_version > "3"',
            'app @ https://h/a.whl ; python_version > "3"',
        ),
        (
            "cannot fetch http://h/x?token=a: timed out",
            "cannot fetch http://h/x?token=***: timed out",
            "cannot fetch http://h/x: timed out",
        ),
    ],
)
def test_secret_query_parameters_are_hidden_and_dropped(
    url: str, shown: str, stored: str | None
) -> None:
    assert redact(url) == shown
    assert redact(shown) == shown
    assert strip_credentials(url) == (url if stored is None else stored)


def test_warnings_hide_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    warn("see https://u:p@h/simple/x/?token=abc")
    assert capsys.readouterr().err == "machci: warning: see https://***@h/simple/x/?token=***\n"


def test_hiding_secrets_takes_linear_time() -> None:
    hostile = "https://" + "h" * 100_000 + "/x?" + "a=1&token=2&" * 100_000 + "." * 50_000 + "x"
    start = time.monotonic()
    assert "token=***" in redact(hostile)
    assert "token" not in strip_credentials(hostile)
    assert time.monotonic() - start < 2.0
