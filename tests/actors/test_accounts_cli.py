"""``threadline accounts list`` and the accounts file's start-up checks, run as a user runs them
(a subprocess): what is configured is shown, never a secret; a file that cannot be used stops
the command with exit 2 and one line naming the file, the account and the field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.actors.test_accounts_e2e import (
    APP_A,
    APP_B,
    BOT_1,
    BOT_2,
    BOT_SECRET_1,
    BOT_SECRET_2,
    PHONE_A,
    TOKEN_1,
    TOKEN_2,
    VIBER_1,
    VIBER_2,
    write_accounts,
)

SECRETS = (APP_A["secret"], APP_A["token"], APP_B["secret"], APP_B["token"], TOKEN_1, TOKEN_2,
           BOT_1, BOT_2, BOT_SECRET_1, BOT_SECRET_2, BOT_1.partition(":")[2], VIBER_1,
           VIBER_2)  # fmt: skip


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    return subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [sys.executable, "-m", "actors", *args],
        capture_output=True, text=True, timeout=120, check=False, env={**clean, **env},
    )  # fmt: skip


def test_accounts_list_shows_every_account_and_no_secret(tmp_path: Path) -> None:
    env = {
        "THREADLINE_ACCOUNTS_FILE": str(write_accounts(tmp_path)),
        "TEST_APP_A_TOKEN": APP_A["token"],
        "TEST_VIBER_TWO_TOKEN": VIBER_2,
        "THREADLINE_INTERCOM_DEFAULT_ADMIN_ID": "7",
    }
    text = run("accounts", "list", env=env)
    assert text.returncode == 0, text.stderr
    as_json = run("accounts", "list", "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)["accounts"]
    assert [(r["channel"], r["id"]) for r in rows] == [
        ("whatsapp", "app-a"), ("whatsapp", "app-b"), ("twilio", "sms-one"),
        ("twilio", "sms-two"), ("telegram", "bot-one"), ("telegram", "bot-two"),
        ("viber", "viber-one"), ("viber", "viber-two"),
    ]  # fmt: skip
    assert rows[0]["accounts"] == [PHONE_A]
    assert rows[0]["profile"]["default_admin_id"] == "991267602"
    assert rows[1]["profile"]["default_admin_id"] == "7"  # the global setting
    assert rows[3]["accounts"] == ["+15557770002"]
    assert rows[5]["route"] == f"/webhooks/telegram/{BOT_2.partition(':')[0]}"
    assert rows[5]["profile"]["team_id"] == "55"
    assert (rows[7]["accounts"], rows[7]["route"]) == (["viber-two"], "/webhooks/viber/viber-two")
    assert "app-b" in text.stdout
    assert "/webhooks/telegram/7100000002" in text.stdout
    for secret in SECRETS:
        assert secret not in text.stdout + text.stderr
        assert secret not in as_json.stdout + as_json.stderr


def test_an_unusable_accounts_file_stops_start_up_naming_file_account_and_field(
    tmp_path: Path,
) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(
        f"""
[[whatsapp]]
id = "one"
app_secret = "changeme"
access_token = {{ env = "NOT_SET_ANYWHERE" }}
phone_number_ids = ["100000000000011"]
colour = "blue"

[[whatsapp]]
id = "two"
app_secret = "{APP_B["secret"]}"
access_token = "{APP_B["token"]}"
phone_number_ids = ["100000000000011"]

[[whatsapp]]
id = "two"
app_secret = "{APP_B["secret"]}"
access_token = "short"
phone_number_ids = ["100000000000033"]

[[twilio]]
id = "sms"
account_sid = "AC123"
auth_token = "{TOKEN_1}"
numbers = ["5551234"]

[[telegram]]
id = "bot"
bot_token = "{BOT_1}"
"""
    )
    env = {"THREADLINE_ACCOUNTS_FILE": str(path), "THREADLINE_TELEGRAM_BOT_TOKEN": BOT_2}
    done = run("accounts", "list", env=env)
    assert done.returncode == 2
    line = done.stderr
    assert line.count("\n") == 1
    assert line.startswith("threadline: ")
    where = f"THREADLINE_ACCOUNTS_FILE {path}"
    for problem in (
        f"{where}: whatsapp account 'one': app_secret: is a placeholder",
        f"{where}: whatsapp account 'one': access_token: the environment variable "
        "NOT_SET_ANYWHERE is not set",
        f"{where}: whatsapp account 'one': colour: unknown field",
        f"{where}: whatsapp account 'two': access_token: is shorter than 8 characters",
        f"{where}: twilio account 'sms': numbers: '5551234' is not E.164",
        f"{where}: twilio account 'sms': account_sid: must be a Twilio account SID",
        f"{where}: telegram account 'bot': secret_token: required",
    ):
        assert problem in line, problem
    for secret in (APP_B["secret"], APP_B["token"], TOKEN_1, BOT_1, BOT_2):
        assert secret not in line
    # Fixed, the duplicates show: the same id, number and app secret in two accounts.
    path.write_text(
        path.read_text()
        .replace('"changeme"', f'"{APP_A["secret"]}"')
        .replace('{ env = "NOT_SET_ANYWHERE" }', f'"{APP_A["token"]}"')
        .replace('colour = "blue"', "")
        .replace('"short"', f'"{APP_A["token"]}"')
        .replace('"AC123"', '"AC' + "1" * 32 + '"')
        .replace('"5551234"', '"+15557770001"')
        .replace(
            f'bot_token = "{BOT_1}"', f'bot_token = "{BOT_1}"\nsecret_token = "{BOT_SECRET_1}"'
        )
    )
    done = run("accounts", "list", env=env)
    assert done.returncode == 2
    line = done.stderr
    assert f"{where}: whatsapp account 'two': id: the same id as another account" in line
    assert (
        f"{where}: whatsapp account 'two': phone_number_ids: 100000000000011 is also an account "
        "of 'one'"
    ) in line
    assert f"{where}: whatsapp account 'two': app_secret: the same as account 'two'" in line
    # Both the file and the variables configure Telegram: refused, naming both.
    path.write_text(f'[[telegram]]\nid = "bot"\nbot_token = "{BOT_1}"\n'
                    f'secret_token = "{BOT_SECRET_1}"\n')  # fmt: skip
    done = run("accounts", "list", env=env)
    assert done.returncode == 2
    line = done.stderr
    assert (f"{where} lists telegram accounts and THREADLINE_TELEGRAM_BOT_TOKEN is set too") in line
    for secret in (APP_A["secret"], APP_A["token"], APP_B["secret"], BOT_1, BOT_2):
        assert secret not in line


def test_an_unusable_viber_account_is_named_with_its_field(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(
        f"""
[[viber]]
id = "one"
auth_token = "{VIBER_1}"

[[viber]]
id = "two"
auth_token = "{VIBER_1}"
bot_name = "A sender name longer than twenty-eight characters"
"""
    )
    env = {"THREADLINE_ACCOUNTS_FILE": str(path)}
    done = run("accounts", "list", env=env)
    assert done.returncode == 2
    line = done.stderr
    where = f"THREADLINE_ACCOUNTS_FILE {path}"
    assert f"{where}: viber account 'one': bot_name: required" in line
    assert f"{where}: viber account 'two': bot_name: must be the bot's sender name" in line
    path.write_text(path.read_text().replace("longer than twenty-eight characters", ""))
    path.write_text(path.read_text().replace('id = "one"', 'id = "one"\nbot_name = "One"'))
    done = run("accounts", "list", env=env)
    assert done.returncode == 2
    assert f"{where}: viber account 'two': auth_token: the same as account 'one'" in done.stderr
    assert VIBER_1 not in done.stderr
    # Both the file and the variables configure Viber: refused, naming both.
    env["THREADLINE_VIBER_AUTH_TOKEN"] = VIBER_2
    path.write_text(f'[[viber]]\nid = "one"\nauth_token = "{VIBER_1}"\nbot_name = "One"\n')
    done = run("accounts", "list", env=env)
    assert done.returncode == 2
    assert f"{where} lists viber accounts and THREADLINE_VIBER_AUTH_TOKEN is set too" in done.stderr
    assert VIBER_2 not in done.stderr


def test_serve_refuses_an_unusable_accounts_file_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text("[[whatsapp]]\nid = 'x'\n")
    done = run(
        "serve", env={"THREADLINE_ACCOUNTS_FILE": str(path), "THREADLINE_LOG_FORMAT": "text",
                      "THREADLINE_INTERCOM_ACCESS_TOKEN": "a-real-looking-intercom-token",
                      "THREADLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'j.db'}"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"THREADLINE_ACCOUNTS_FILE {path}: whatsapp account 'x': app_secret: required" in (
        done.stderr
    )
