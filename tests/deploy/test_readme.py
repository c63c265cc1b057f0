"""The README's "Deploy" section and the operations guide: what they tell a newcomer works.

The example message the README sends with curl is accepted by a live bridge configured like the
compose nodes and reaches the sandbox Intercom at the URL the README gives; every file they name
exists; the ports they list are the ones the compose file publishes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from actors.tools import open_stack
from tests.actors.conftest import eventually
from tests.deploy.conftest import DEPLOY, REPO, load_yaml

README = REPO / "README.md"
GUIDE = REPO / "docs" / "operations.md"


def deploy_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Deploy\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def curl_headers() -> dict[str, str]:
    return dict(line.split(": ", 1) for line in re.findall(r"-H '([^']+)'", deploy_section()))


def test_deploy_section_is_the_last_section_of_the_readme() -> None:
    assert README.read_text(encoding="utf-8").rstrip().endswith(deploy_section().rstrip())


async def test_the_readme_example_message_reaches_the_sandbox_intercom(tmp_path: Path) -> None:
    body = (DEPLOY / "examples" / "telegram-message.json").read_bytes()
    text = json.loads(body)["message"]["text"]
    headers = curl_headers()
    assert "@deploy/examples/telegram-message.json" in deploy_section()
    async with open_stack(
        database_url=f"sqlite:///{tmp_path / 'db'}", media_dir=str(tmp_path / "media")
    ) as stack:
        response = await stack.http.post("/webhooks/telegram", content=body, headers=headers)
        assert response.status_code == 200, response.text
        await eventually(lambda: len(stack.conversations()) == 1)
        url = stack.sandbox_url + "/intercom/_sandbox/conversations"
        assert "localhost:8090/intercom/_sandbox/conversations" in deploy_section()
        async with httpx.AsyncClient() as client:
            listed = await client.get(url)
    assert listed.status_code == 200
    assert text in listed.text


def test_the_readme_curl_uses_the_compose_secret() -> None:
    (compose,) = load_yaml(DEPLOY / "docker-compose.yml")
    env = compose["services"]["threadline-1"]["environment"]
    secret = curl_headers()["X-Telegram-Bot-Api-Secret-Token"]
    assert secret == env["THREADLINE_TELEGRAM_SECRET_TOKEN"]


def test_the_ports_the_readme_lists_are_the_ones_compose_publishes() -> None:
    (compose,) = load_yaml(DEPLOY / "docker-compose.yml")
    published = {
        int(mapping.split(":")[0])
        for service in compose["services"].values()
        for mapping in service.get("ports", [])
    }
    listed = {int(port) for port in re.findall(r"localhost:(\d+)", deploy_section())}
    assert listed == published


def test_every_file_the_readme_and_the_guide_name_exists() -> None:
    for text in (deploy_section(), GUIDE.read_text(encoding="utf-8")):
        for path in re.findall(r"(?<![\w/])((?:deploy|docs)/[\w./-]*\w)", text):
            if path != "deploy/threadline":  # kubectl's deploy/<name>, not a file
                assert (REPO / path).exists(), path
