"""Bad input gets a readable error, never a traceback: every ``python -m linconv`` command, the pytest
options, and the Case / ConvGeometry constructors, each with its exact message.

The converters' bad inputs are tested in tests/test_converters.py. The ``xfail(strict=True)``
tests below pin down gaps found while writing this file (a traceback where a message belongs);
each turns into a failure, prompting an exact-text test, once the gap is closed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from linconv.__main__ import main
from linconv.calibration import calibrated_relations
from linconv.core.cases import Case
from linconv.core.config import parse_dtypes, parse_max_numel
from linconv.core.geometry import ConvGeometry
from linconv.faults import all_faults
from linconv.lanes.devices import device_unavailable_reason

ROOT = Path(__file__).resolve().parent.parent


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(command: str, message: str) -> tuple[int, str]:
    """What argparse prints last for a usage error in ``command`` (its usage lines come first)."""
    return 2, f"python -m linconv{' ' + command if command else ''}: error: {message}\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "missing": tmp_path / "missing.json",
        "not_json": tmp_path / "not.json",
        "empty_object": tmp_path / "empty.json",
        "binary": tmp_path / "binary.json",
        "directory": tmp_path / "somedir",
    }
    paths["not_json"].write_text("{not json", encoding="utf-8")
    paths["empty_object"].write_text("{}", encoding="utf-8")
    paths["binary"].write_bytes(b"\xff\xfe\x00garbage")
    paths["directory"].mkdir()
    return paths


# --- python -m linconv ---------------------------------------------------------------------------


def test_no_command(capsys):
    code, _, err = run_cli(capsys)
    assert (code, err.splitlines()[-1] + "\n") == usage_error("", "the following arguments are required: COMMAND")


def test_unknown_command(capsys):
    code, _, err = run_cli(capsys, "nope")
    assert code == 2
    assert err.splitlines()[-1].startswith("python -m linconv: error: argument COMMAND: invalid choice: 'nope' (choose")


def test_unknown_option_of_a_command(capsys):
    code, _, err = run_cli(capsys, "faults", "--bogus")
    assert (code, err.splitlines()[-1] + "\n") == usage_error("", "unrecognized arguments: --bogus")


# --- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--only", "nope"], "faults: unknown fault(s) nope; `python -m linconv faults --list` names them\n"),
        (
            ["--only", "squeeze_instead_of_flatten", "--only", "x", "--only", "y"],
            "faults: unknown fault(s) x, y; `python -m linconv faults --list` names them\n",
        ),
        (["--max-examples", "0"], "faults: --max-examples must be >= 1, got 0\n"),
        (
            ["--lane", "eager", "--lane", "jit"],
            "faults: --lane must be one of ['compiled', 'compiled-freezing', 'eager'], got jit\n",
        ),
        (
            ["--device", "tpu"],
            "faults: --device: device must be one of ('cpu', 'cuda', 'mps') (optionally cuda:N), got 'tpu'\n",
        ),
        (["--device", "cuda:99"], f"faults: --device cuda:99: {device_unavailable_reason('cuda:99')}\n"),
    ],
)
def test_faults_rejects(capsys, argv, message):
    assert run_cli(capsys, "faults", *argv) == (2, "", message)


def test_faults_rejects_a_directory_as_output_before_running(capsys, files):
    for option in ("--markdown", "--json"):
        code, out, err = run_cli(capsys, "faults", option, str(files["directory"]))
        assert (code, out, err) == (2, "", f"faults: {option} {files['directory']} is a directory, not a file\n")


def test_faults_max_examples_must_be_an_int(capsys):
    code, _, err = run_cli(capsys, "faults", "--max-examples", "x")
    assert (code, err.splitlines()[-1] + "\n") == usage_error(
        "faults", "argument --max-examples: invalid int value: 'x'"
    )


def test_faults_list_names_every_fault(capsys):
    code, out, err = run_cli(capsys, "faults", "--list")
    assert (code, err) == (0, "")
    assert [line.split()[0] for line in out.splitlines()] == [f.name for f in all_faults()]


# --- calibrate -----------------------------------------------------------------------------------

_RELATIONS = ",".join(calibrated_relations())  # read from the registry: every relation marked calibrated


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--relations", "nope"],
            f"calibrate: --relations must be a subset of {_RELATIONS} (execution lane eager), got 'nope'\n",
        ),
        (
            ["--relations", ""],
            f"calibrate: --relations must be a subset of {_RELATIONS} (execution lane eager), got ''\n",
        ),
        (
            ["--execution", "jit"],
            "calibrate: --execution: execution lane must be one of ('eager', 'compiled', "
            "'compiled-dynamic', 'compiled-freezing', 'compiled-autotune', 'compiled-conv1x1-mm'), got 'jit'\n",
        ),
        (["--examples", "0"], "calibrate: --examples must be >= 1, got 0\n"),
    ],
)
def test_calibrate_rejects(capsys, argv, message):
    assert run_cli(capsys, "calibrate", *argv) == (2, "", message)


def test_calibrate_examples_must_be_an_int(capsys):
    code, _, err = run_cli(capsys, "calibrate", "--examples", "many")
    assert (code, err.splitlines()[-1] + "\n") == usage_error(
        "calibrate", "argument --examples: invalid int value: 'many'"
    )


def test_calibrate_unreadable_samples(capsys, files):
    cases = {
        "missing": "[Errno 2] No such file or directory: '{path}'",
        "not_json": "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "binary": "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte",
        "empty_object": "Sample.__init__() missing 7 required positional arguments: 'relation', 'dtype', 'values', "
        "'formulation', 'tensor', 'c_needed', and 'ratio'",
    }
    for name, reason in cases.items():
        path = files[name]
        message = f"calibrate: --from-samples {path}: cannot read samples: {reason.format(path=path)}\n"
        assert run_cli(capsys, "calibrate", "--from-samples", str(path)) == (2, "", message), name


def test_calibrate_rejects_a_directory_as_json(capsys, files):
    code, _, err = run_cli(
        capsys, "calibrate", "--examples", "1", "--relations", "pointwise", "--json", str(files["directory"])
    )
    assert (code, err) == (2, f"calibrate: --json must be a file path, got the directory {str(files['directory'])!r}\n")


# --- report --------------------------------------------------------------------------------------


def test_report_needs_a_path(capsys):
    code, _, err = run_cli(capsys, "report")
    assert (code, err.splitlines()[-1] + "\n") == usage_error("report", "the following arguments are required: PATH")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing", "{path}: no such file"),
        ("not_json", "{path}: is not valid JSON (line 1, column 2: Expecting property name enclosed in double quotes)"),
        ("empty_object", "{path}: field 'schema_version' is missing"),
        ("directory", "{path}/report.json: no such file"),
    ],
)
def test_report_rejects(capsys, files, name, message):
    path = files[name]
    assert run_cli(capsys, "report", str(path)) == (2, "", f"report: {message.format(path=path)}\n")


def test_report_rejects_a_binary_file(capsys, files):
    code, _, err = run_cli(capsys, "report", str(files["binary"]))
    assert code == 2 and err.startswith(f"report: {files['binary']}: ")


# --- regressions ---------------------------------------------------------------------------------


def test_regressions_needs_an_action(capsys):
    code, _, err = run_cli(capsys, "regressions")
    assert (code, err.splitlines()[-1] + "\n") == usage_error(
        "regressions", "the following arguments are required: ACTION"
    )


def test_regressions_add_unreadable_files(capsys, files, tmp_path):
    corpus = str(tmp_path / "corpus")
    cases = {
        "missing": f"error: {files['missing']}: no such file\n",
        "not_json": f"error: {files['not_json']}: is not valid JSON (line 1, column 2: Expecting property name "
        "enclosed in double quotes)\n",
        "binary": f"error: {files['binary']}: is not UTF-8 text (byte 0: invalid start byte)\n",
    }
    for name, message in cases.items():
        assert run_cli(capsys, "regressions", "add", str(files[name]), "--dir", corpus) == (1, "", message), name


def test_regressions_add_bad_torch_range(capsys, files, tmp_path):
    argv = ["regressions", "add", str(files["empty_object"]), "--dir", str(tmp_path), "--xfail-torch", "garbage"]
    assert run_cli(capsys, *argv) == (
        2,
        "",
        "error: --xfail-torch must be a version range like \">=2.1,<2.4\", got 'garbage'\n",
    )


def test_regressions_show_unknown_id(capsys, files):
    directory = files["directory"]
    assert run_cli(capsys, "regressions", "show", "zzz", "--dir", str(directory)) == (
        1,
        "",
        f"error: no case in {directory} with an id starting 'zzz'\n",
    )


def test_regressions_check_unknown_device(capsys, files):
    argv = ["regressions", "check", "--devices", "tpu", "--dir", str(files["directory"])]
    assert run_cli(capsys, *argv) == (
        2,
        "",
        "error: --devices: device must be one of ('cpu', 'cuda', 'mps') (optionally cuda:N), got 'tpu'\n",
    )


@pytest.mark.parametrize("action", ["list", "check", "show"])
def test_regressions_refuse_a_missing_or_file_dir(capsys, files, action):
    """A mistyped --dir is an error, not an empty corpus that replays nothing and passes."""
    extra = ["abc"] if action == "show" else []
    missing, not_dir = files["missing"], files["not_json"]
    assert run_cli(capsys, "regressions", action, *extra, "--dir", str(missing)) == (
        2,
        "",
        f"error: --dir {missing} does not exist\n",
    )
    assert run_cli(capsys, "regressions", action, *extra, "--dir", str(not_dir)) == (
        2,
        "",
        f"error: --dir {not_dir} is not a directory\n",
    )


def test_regressions_refuse_a_missing_default_dir(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LINCONV_REGRESSIONS_DIR", str(tmp_path / "nothing-here"))
    assert run_cli(capsys, "regressions", "list") == (
        2,
        "",
        "error: the corpus directory ($LINCONV_REGRESSIONS_DIR, else ./regressions) "
        f"{tmp_path / 'nothing-here'} does not exist\n",
    )


# --- pytest options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            ["--devices", "tpu"],
            "--devices: device must be one of ('cpu', 'cuda', 'mps') (optionally cuda:N), got 'tpu'",
        ),
        (["--devices", ","], "--devices: must name at least one device (cpu, cuda, cuda:N, mps) or 'all', got ','"),
        (
            ["--dtypes", "float8"],
            "dtypes must be a comma-separated subset of float32,float64,bfloat16,float16, got 'float8'",
        ),
        (
            ["--max-numel", "10"],
            "max numel (LINCONV_MAX_NUMEL / --max-numel) must be an int in [4096, 67108864], got '10'",
        ),
        (
            ["--inject-fault", "nope"],
            f"--inject-fault: fault must be one of the {len(all_faults())} names that "
            "`python -m linconv faults --list` prints, got 'nope'",
        ),
    ],
    ids=["devices", "no-devices", "dtypes", "max-numel", "inject-fault"],
)
def test_pytest_option_rejects(option, message):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "properties/test_init.py",
            *option,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 4  # pytest's usage error
    assert f"ERROR: {message}\n" in proc.stderr


# --- Case and ConvGeometry -----------------------------------------------------------------------

G = ConvGeometry
GEOMETRY_ERRORS = [
    (
        lambda: G(-1, 1, 1, (1, 1)),
        "batch must be a positive int (or 0: an empty batch, a Linear with no in or out features), got -1",
    ),
    (
        lambda: G(1, True, 1, (1, 1)),
        "in_channels must be a positive int (or 0: an empty batch, a Linear with no in or out features), got True",
    ),
    (
        lambda: G(1, 0, 1, (3, 3), kernel=3),
        "in_channels=0, out_channels=1: zero features only for a Linear's geometry "
        "(kernel 1, stride 1, groups 1, not transposed)",
    ),
    (lambda: G(1, 1, 1, (2.5, 1)), "size must be 1 to 3 positive ints (the spatial input size), got (2.5, 1)"),
    (lambda: G(1, 1, 1, (1, 1, 1, 1)), "size must be 1 to 3 positive ints (the spatial input size), got (1, 1, 1, 1)"),
    (lambda: G(1, 1, 1, (0, 3)), "size must be positive in every dimension, got (0, 3)"),
    (lambda: G(1, 1, 1, (3, 3), kernel=(0, 1)), "kernel must be >= 1 in every dimension, got (0, 1)"),
    (lambda: G(1, 1, 1, (3, 3), kernel="3"), "kernel must be an int or 2 ints, got '3'"),
    (lambda: G(1, 1, 1, (3, 3), kernel=(1, 2, 3)), "kernel must be an int or 2 ints, got (1, 2, 3)"),
    (lambda: G(1, 1, 1, (3,), kernel=(1, 2)), "kernel must be an int, got (1, 2)"),
    (lambda: G(1, 1, 1, (3, 3), stride=True), "stride must be an int or 2 ints, got True"),
    (lambda: G(1, 1, 1, (3, 3), dilation=0), "dilation must be >= 1 in every dimension, got (0, 0)"),
    (lambda: G(1, 4, 6, (3, 3), groups=3), "groups=3 must divide in_channels=4 and out_channels=6"),
    (
        lambda: G(1, 1, 1, (3, 3), padding_mode="mirror"),
        "padding_mode must be one of ('zeros', 'reflect', 'replicate', 'circular'), got 'mirror'",
    ),
    (lambda: G(1, 1, 1, (3, 3), padding="full"), "padding must be ints, 'same' or 'valid', got 'full'"),
    (
        lambda: G(1, 1, 1, (3, 3), kernel=3, padding="same", stride=2),
        "padding='same' needs stride 1 (torch refuses it), got (2, 2)",
    ),
    (lambda: G(1, 1, 1, (3, 3), padding=-1), "padding must be >= 0, got (-1, -1)"),
    (lambda: G(1, 1, 1, (3, 3), bias=1), "bias must be true or false, got 1"),
    (
        lambda: G(1, 1, 1, (3, 3), kernel=3, padding=3, padding_mode="reflect"),
        "padding_mode='reflect' needs padding < input size, got padding (3, 3) for input 3x3",
    ),
    (
        lambda: G(1, 1, 1, (3, 3), kernel=3, padding=4, padding_mode="circular"),
        "padding_mode='circular' needs padding <= input size, got padding (4, 4) for input 3x3",
    ),
    (
        lambda: G(1, 1, 1, (3, 3), kernel=(2, 5), dilation=(1, 2)),
        "kernel (2, 5) with dilation (1, 2) does not fit input 3x3 padded by (0, 0): output would be 2x-5",
    ),
    (lambda: G(1, 1, 1, (3,), transposed=1), "transposed must be true or false, got 1"),
    (
        lambda: G(1, 1, 1, (3, 3), output_padding=1),
        "output_padding needs transposed=true (a ConvTranspose), got (1, 1)",
    ),
    (
        lambda: G(1, 1, 1, (3,), padding_mode="reflect", transposed=True),
        "a transposed conv needs padding_mode='zeros' (torch refuses others), got 'reflect'",
    ),
    (lambda: G(1, 1, 1, (3,), padding="same", transposed=True), "a transposed conv needs integer padding, got 'same'"),
    (
        lambda: G(1, 1, 1, (3, 3), stride=(2, 1), output_padding=(1, 1), transposed=True),
        "output_padding must be >= 0 and smaller than the stride or the dilation in every dimension, got "
        "output_padding (1, 1) with stride (2, 1) and dilation (1, 1)",
    ),
    (
        lambda: G(1, 1, 1, (2,), kernel=3, padding=3, transposed=True),
        "transposed conv with kernel (3,), stride (1,), padding (3,) and dilation (1,) on input 2: output would be -2",
    ),
]
CASE_ERRORS = [
    (lambda: Case({"batch": 1}), "geometry must be a ConvGeometry, got dict"),
    (
        lambda: Case(G(1, 1, 1, (1, 1)), dtype="float8"),
        "dtype must be one of ('float32', 'float64', 'bfloat16', 'float16'), got 'float8'",
    ),
    (
        lambda: Case(G(1, 1, 1, (1, 1)), values="gaussian"),
        "values must be one of ('normal', 'integer', 'positive', 'wide'), got 'gaussian'",
    ),
    (
        lambda: Case(G(1, 1, 1, (1, 1)), memory_format="nhwc"),
        "memory_format must be one of ('contiguous', 'channels_last'), got 'nhwc'",
    ),
    (
        lambda: Case(G(1, 1, 1, (1, 1)), input_view="transposed"),
        "input_view must be one of ('dense', 'strided', 'size1_strides'), got 'transposed'",
    ),
    (lambda: Case(G(1, 1, 1, (1, 1)), head_features=-1), "head_features must be an int >= 0, got -1"),
    (lambda: Case(G(1, 1, 1, (1, 1)), seed=-1), "seed must be an int in [0, 2**63), got -1"),
    (lambda: Case(G(1, 1, 1, (1, 1)), seed=2**63), "seed must be an int in [0, 2**63), got 9223372036854775808"),
    (lambda: Case(G(1, 1, 1, (1, 1)), seed="1"), "seed must be an int in [0, 2**63), got '1'"),
    (lambda: Case.from_dict([1]), "a case must be an object with a 'geometry' field"),
    (lambda: Case.from_dict({"dtype": "float32"}), "a case must be an object with a 'geometry' field"),
]
CONFIG_ERRORS = [
    (
        lambda: parse_dtypes("float32,float8"),
        "dtypes must be a comma-separated subset of float32,float64,bfloat16,float16, got 'float32,float8'",
    ),
    (
        lambda: parse_dtypes(" , "),
        "dtypes must be a comma-separated subset of float32,float64,bfloat16,float16, got ' , '",
    ),
    (
        lambda: parse_max_numel("lots"),
        "max numel (LINCONV_MAX_NUMEL / --max-numel) must be an int in [4096, 67108864], got 'lots'",
    ),
]


@pytest.mark.parametrize(("build", "message"), GEOMETRY_ERRORS + CASE_ERRORS + CONFIG_ERRORS)
def test_construction_error(build, message):
    with pytest.raises(ValueError) as info:
        build()
    assert str(info.value) == message


def test_geometry_from_dict_names_an_unknown_or_missing_field():
    fields = {"batch": 1, "in_channels": 1, "out_channels": 1, "size": [1, 1]}
    with pytest.raises(ValueError, match=r"^geometry has unknown field\(s\) \['colour'\]; known: \['batch', "):
        G.from_dict({**fields, "colour": 3})
    with pytest.raises(ValueError, match=r"^geometry is missing required field\(s\) \['size'\]$"):
        G.from_dict({k: v for k, v in fields.items() if k != "size"})
    with pytest.raises(ValueError, match=r"^case has unknown field\(s\) \['colour'\]; known: \['geometry', "):
        Case.from_dict({"geometry": fields, "colour": 1})


def test_case_from_dict_with_a_geometry_that_is_not_an_object():
    with pytest.raises(ValueError, match=r"^geometry must be an object of ConvGeometry fields, got list$"):
        Case.from_dict({"geometry": [1, 2]})


def test_case_from_dict_with_an_unknown_field():
    with pytest.raises(ValueError, match=r"^case has unknown field\(s\) \['colour'\]"):
        Case.from_dict({"geometry": {}, "colour": "red"})


# --- gate ----------------------------------------------------------------------------------------


@pytest.fixture
def gate_command():
    from linconv.__main__ import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    if "gate" not in commands:
        pytest.skip("python -m linconv gate is not here yet")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing", "{path}: no such file"),
        ("not_json", "{path}: is not valid JSON (line 1, column 2: Expecting property name enclosed in double quotes)"),
        ("empty_object", "{path}: field 'schema_version' is missing"),
        ("directory", "{path}/report.json: no such file"),
    ],
)
def test_gate_rejects(capsys, files, gate_command, name, message):
    path = files[name]
    assert run_cli(capsys, "gate", str(path), str(path)) == (2, "", f"gate: {message.format(path=path)}\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--z", "-1"], "argument --z: must be a finite number >= 0, got '-1'"),
        (["--z", "x"], "argument --z: must be a float, got 'x'"),
        (["--margin", "nan"], "argument --margin: must be a finite number >= 0, got 'nan'"),
        (["--run-noise", "inf"], "argument --run-noise: must be a finite number >= 0, got 'inf'"),
        (["--min-count", "1.5"], "argument --min-count: must be a int, got '1.5'"),
    ],
)
def test_gate_rejects_thresholds(capsys, gate_command, argv, message):
    code, _, err = run_cli(capsys, "gate", *argv, "a", "b")
    assert (code, err.splitlines()[-1] + "\n") == usage_error("gate", message)


def test_gate_rejects_a_binary_file(capsys, files, gate_command):
    code, _, err = run_cli(capsys, "gate", str(files["binary"]), str(files["binary"]))
    assert code == 2 and err.startswith(f"gate: {files['binary']}: ")
