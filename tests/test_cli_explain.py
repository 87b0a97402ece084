"""``sspi-import explain`` (``cli/_explain.py``): every form of a code, aliases, suggestions,
exit statuses, 80 columns and the JSON document.
"""

from __future__ import annotations

import pytest

from cli_contract import fits, run, run_json


@pytest.mark.parametrize(
    "form",
    [
        "0x80090306",  # hex, as the headers write it
        "0X80090306",
        "2148074246",  # unsigned decimal
        "-2146893050",  # signed decimal, as OSError.winerror and pywin32 show it
        "SEC_E_NOT_OWNER",
        "sec_e_not_owner",
        " 0x80090306 ",
    ],
)
def test_explain_every_form(capsys: pytest.CaptureFixture[str], form: str) -> None:
    status, out, err = run(capsys, "explain", form)
    assert status == 0, err
    assert out.splitlines()[0] == "SEC_E_NOT_OWNER  0x80090306  -2146893050"
    assert "meaning:" in out
    assert "advice:" in out
    assert "raises:    sspi_import.NotOwnerError" in out
    assert err == ""


def test_explain_alias_success_code_and_class_free_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, "explain", "SEC_E_NOT_SUPPORTED", "0x00090312", "0x80090307")
    assert status == 0
    assert "SEC_E_UNSUPPORTED_FUNCTION  0x80090302  -2146893054" in out
    assert "also:      SEC_E_NOT_SUPPORTED" in out
    assert "SEC_I_CONTINUE_NEEDED  0x00090312  590610" in out
    install = out[out.index("SEC_E_CANNOT_INSTALL") :]
    assert "raises:" not in install  # no class of its own: plain SspiError


def test_explain_text_fits_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    codes = ["SEC_E_UNSUPPORTED_FUNCTION", "SEC_E_NOT_OWNER", "0x12345678", "80090306"]
    _, out, err = run(capsys, "explain", *codes, "junk")
    assert fits(out), out
    assert fits(err), err
    long_advice = next(line for line in out.splitlines() if line.startswith("  advice:"))
    assert len(long_advice) > 60  # wrapped, not cut: the next line carries on indented
    assert out.splitlines()[out.splitlines().index(long_advice) + 1].startswith(" " * 13)


def test_explain_unknown_code_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "explain", "0x80090306", "0x12345678")
    assert status == 1
    assert "0x12345678  305419896  unknown" in out
    assert "SEC_E_NOT_OWNER" in out


@pytest.mark.parametrize("garbage", ["garbage", "SEC_E_NO_SUCH_THING", "0x1FFFFFFFF", "0x"])
def test_explain_garbage_exits_2(capsys: pytest.CaptureFixture[str], garbage: str) -> None:
    status, out, err = run(capsys, "explain", garbage, "0x12345678")
    assert status == 2
    assert "sspi-import explain: " in err
    assert "unknown" in out  # the other codes are still explained
    assert "sspi-import" not in out  # diagnostics on stderr only


def test_explain_decimal_that_reads_as_hex_is_accepted_and_suggested(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 80090306 is decimal 0x04C614C2, unknown; its hex reading 0x80090306 is SEC_E_NOT_OWNER
    status, out, err = run(capsys, "explain", "80090306")
    assert status == 1
    assert out.startswith("0x04C614C2  80090306  unknown\n")
    assert "did you mean 0x80090306 (SEC_E_NOT_OWNER)?" in " ".join(err.split())
    status, doc = run_json(capsys, "explain", "80090306")
    assert status == 1
    (entry,) = doc["codes"]
    assert entry["status"] == 80090306
    assert entry["suggestion"] == {
        "input": "0x80090306",
        "status": 0x80090306,
        "symbol": "SEC_E_NOT_OWNER",
    }


def test_explain_no_suggestion_when_the_decimal_is_known_or_hex_unknown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, doc = run_json(capsys, "explain", "2148074246", "12345678", "0x80090306")
    assert [entry["suggestion"] for entry in doc["codes"]] == [None, None, None]
    assert capsys.readouterr().err == ""


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    # New contract (issue 15.6): one object with a schema id, entries with the same keys.
    status, doc = run_json(capsys, "explain", "-2146893050", "0x12345678", "junk")
    assert status == 2
    assert doc["schema"] == "sspi-import/explain/1"
    assert doc["ok"] is False
    known, unknown, junk = doc["codes"]
    assert known == {
        "input": "-2146893050",
        "valid": True,
        "known": True,
        "symbol": "SEC_E_NOT_OWNER",
        "status": 0x80090306,
        "hex": "0x80090306",
        "signed": -2146893050,
        "meaning": known["meaning"],
        "advice": known["advice"],
        "aliases": [],
        "exception": "sspi_import.NotOwnerError",
        "suggestion": None,
        "error": None,
    }
    assert known["meaning"]
    assert unknown["known"] is False
    assert unknown["valid"] is True
    assert unknown["symbol"] is None
    assert junk["valid"] is False
    assert junk["status"] is None
    assert "is not a status code" in junk["error"]
    assert set(known) == set(unknown) == set(junk)
    status, doc = run_json(capsys, "explain", "SEC_E_OK")
    assert (status, doc["ok"]) == (0, True)


def test_explain_needs_a_code(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "explain")
    assert status == 2
    assert "CODE" in err
    assert out == ""


@pytest.mark.parametrize("text", ["\u0661\u0662\u0663", "\uff11\uff12\uff13", "9" * 5000])
def test_digits_of_other_scripts_and_huge_numbers_are_usage_errors(
    capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """They crashed with a traceback (a ValueError raised while suggesting a hex code)."""
    status, doc = run_json(capsys, "explain", text)
    assert status == 2
    assert doc["codes"][0]["valid"] is False
