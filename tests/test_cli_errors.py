"""Issue 11: every command reports a bad input as one line, ``PROG: error: <what> (<file>); <hint>``, with exit
status 2 and no traceback; a bug (any other exception) still shows its traceback and another status."""

from __future__ import annotations

import importlib
import pickle
import re
import subprocess
import sys
import tomllib

import pytest

from helpers import DEBUG_CFG, REPO
from nninteractive_train.config.load import did_you_mean
from nninteractive_train.errors import CaseError, SetupError, UsageError, UserError, format_error


def _scripts() -> dict[str, str]:
    """Console script name → module, from pyproject.toml."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    return {name: target.split(":")[0] for name, target in scripts.items()}


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A fresh nnU-Net tree with a small raw dataset 990, a preprocessed folder for it without plans, and a few
    broken inputs; the test's environment points at it."""
    roots = {k: tmp_path / k for k in ("raw", "pre", "res")}
    for var, key in (("nnUNet_raw", "raw"), ("nnUNet_preprocessed", "pre"), ("nnUNet_results", "res")):
        roots[key].mkdir()
        monkeypatch.setenv(var, str(roots[key]))
    for var in ("nnUNet_def_n_proc", "nnUNet_n_proc_DA", "nnUNet_compile"):
        monkeypatch.delenv(var, raising=False)
    (roots["raw"] / "Dataset990_Synthetic" / "imagesTr").mkdir(parents=True)
    (roots["raw"] / "Dataset990_Synthetic" / "dataset.json").write_text('{"file_ending": ".nii.gz"}')
    (roots["raw"] / "Dataset990_Synthetic" / "imagesTr" / "case_0000.nii.gz").write_bytes(b"")  # listed, not read
    (roots["pre"] / "Dataset990_Synthetic").mkdir()
    fx = tmp_path / "fx"
    (fx / "emptyrun").mkdir(parents=True)
    (fx / "emptyrun" / "config.yaml").write_text("")
    (fx / "typo.yaml").write_text("trainig:\n  num_epochs: 3\n")
    (fx / "notarun").mkdir()
    (fx / "corrupt").mkdir()
    for name in ("plans.json", "dataset.json"):
        (fx / "corrupt" / name).write_text("{}")
    (fx / "corrupt" / "checkpoint_final.pth").write_bytes(b"not a checkpoint")
    return {**roots, "fx": fx, "tmp": tmp_path}


CFG = str(DEBUG_CFG)
# (command module, argv with {placeholders} from the tree fixture, extra environment, text the line must hold:
# the file or folder concerned, or the value at fault where there is no file)
BAD_INPUTS = [
    ("make_synthetic", ["-d", "990"], {"nnUNet_raw": None}, "nnUNet_raw is not set"),
    ("make_synthetic", ["-d", "abc"], {}, "'abc'"),
    ("make_synthetic", ["-d", "5", "--shape", "5", "4", "8", "8", "8", "8"], {}, "--shape"),
    ("make_synthetic", ["-d", "990", "--name", "Other"], {}, "{raw}/Dataset990_Synthetic"),
    ("make_synthetic", ["-d", "Dataset990_Synthetic", "--name", "Other"], {}, "'Other'"),
    ("build_collection", ["{tmp}/missing.yaml", "-d", "950"], {}, "{tmp}/missing.yaml"),
    ("plan_and_preprocess", ["-d", "999"], {}, "{raw}"),
    ("plan_and_preprocess", ["-d", "990", "--config", "{fx}/typo.yaml"], {}, "{fx}/typo.yaml"),
    ("plan_and_preprocess", ["-d", "990", "--config", "{tmp}/none.yaml"], {}, "{tmp}/none.yaml"),
    ("plan_and_preprocess", ["-d", "990"], {"nnUNet_def_n_proc": "many"}, "nnUNet_def_n_proc='many'"),
    ("generate_supervoxels", ["-d", "998"], {}, "{pre}"),
    ("generate_supervoxels", ["-d", "990"], {}, "{pre}/Dataset990_Synthetic"),
    ("sampling_report", ["-d", "990"], {}, "{raw}/Dataset990_Synthetic/nnInteractive_manifest.npz"),
    ("prompt_gallery", ["-d", "42", "--out", "{tmp}/g.png"], {}, "{raw}"),
    ("prompt_gallery", ["--out", "{tmp}/g.jpg"], {}, "g.jpg"),
    ("train", ["-d", "990", "--config", CFG], {}, "{pre}/Dataset990_Synthetic/nnInteractivePlans.json"),
    ("train", ["-d", "991", "--config", CFG], {}, "{pre}"),
    ("train", ["-d", "Dataset990_Other", "--config", CFG], {}, "{pre}"),
    ("train", ["-d", "990", "--config", CFG, "training.num_epoch=3"], {}, "'num_epochs'"),
    ("train", ["-d", "990", "--output", "{fx}/emptyrun", "--resume"], {}, "{fx}/emptyrun/config.yaml"),
    ("train", ["-d", "990", "--config", CFG, "--output", "{tmp}/r"], {"nnUNet_n_proc_DA": "x"}, "nnUNet_n_proc_DA"),
    ("train", ["-d", "990", "--output", "{fx}/notarun", "--resume"], {}, "{fx}/notarun"),
    ("submit_slurm", ["-d", "990", "--output", "{tmp}/s", "--time", "soon", "--dry-run"], {}, "'soon'"),
    ("export", ["{fx}/notarun", "{tmp}/m"], {}, "{fx}/notarun/checkpoint_final.pth"),
    ("export", ["{fx}/corrupt", "{tmp}/m"], {}, "{fx}/corrupt/checkpoint_final.pth"),
    ("export", ["-d", "990", "{tmp}/m"], {}, "{res}"),
    ("export", ["{tmp}/m"], {}, "RUN_DIR"),
    ("evaluate", ["{tmp}/nomodel", "-d", "990"], {}, "{tmp}/nomodel"),
    ("evaluate", ["{fx}/notarun", "-d", "990", "--steps", "-1"], {}, "--steps"),
    ("evaluate", ["-d", "990"], {}, "{res}"),
    ("evaluate", ["{tmp}/nomodel", "-d", "990", "--split", "imagesTs"], {}, "{raw}/Dataset990_Synthetic/imagesTs"),
]


def _fill(text: str, tree: dict) -> str:
    return text.format(**{k: str(v) for k, v in tree.items()})


def _exit_and_stderr(module: str, argv: list[str], capsys) -> tuple[int, str]:
    main = importlib.import_module(f"nninteractive_train.cli.{module}").main
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code, capsys.readouterr().err


@pytest.mark.parametrize("module, argv, env, needle", BAD_INPUTS,
                         ids=[f"{m}:{' '.join(a)}".replace(CFG, "CFG") for m, a, _, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(tree, monkeypatch, capsys, module, argv, env, needle):
    for k, v in env.items():
        monkeypatch.delenv(k) if v is None else monkeypatch.setenv(k, v)
    code, err = _exit_and_stderr(module, [_fill(a, tree) for a in argv], capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert re.match(rf"^nnInteractive_{module}: error: \S", lines[0]), lines[0]
    assert _fill(needle, tree) in lines[0]


@pytest.mark.parametrize("script, module", sorted(_scripts().items()))
def test_every_command_uses_the_runner(script, module, capsys):
    """An unknown option: argparse's usage block is replaced by the one line, and the hint names --help."""
    with pytest.raises(SystemExit) as e:
        importlib.import_module(module).main(["--no-such-option"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2
    assert re.fullmatch(rf"{script}: error: (unrecognized arguments: --no-such-option|the following arguments are "
                        rf"required: .+); see {script} --help", err), err


@pytest.mark.parametrize("module, target, error", [
    ("make_synthetic", "nninteractive_train.data.synthetic.write_dataset", RuntimeError),
    ("plan_and_preprocess", "nninteractive_train.planning.planner.plan_and_preprocess", KeyError),
    ("train", "nninteractive_train.training.launch.train", RuntimeError),
    ("export", "nninteractive_train.export.export_run", KeyError),
    ("build_collection", "nninteractive_train.data.build.build_collection", FileNotFoundError),
    ("sampling_report", "nninteractive_train.data.manifest.find_manifest", ValueError),
])
def test_a_bug_is_not_turned_into_a_user_error(tree, monkeypatch, capsys, module, target, error):
    """A function deep inside raising an ordinary exception reaches the caller unchanged (no SystemExit 2)."""
    def bug(*args, **kwargs):
        raise error("simulated bug")

    owner, name = target.rsplit(".", 1)
    monkeypatch.setattr(importlib.import_module(owner), name, bug)
    argv = {"make_synthetic": ["-d", "5"], "plan_and_preprocess": ["-d", "990"],
            "train": ["-d", "990", "--config", CFG, "--output", _fill("{tmp}/r", tree)],
            "export": [_fill("{fx}/notarun", tree), _fill("{tmp}/m", tree)],
            "build_collection": [_fill("{tmp}/list.yaml", tree), "-d", "950"],
            "sampling_report": ["-d", "990"]}[module]
    main = importlib.import_module(f"nninteractive_train.cli.{module}").main
    with pytest.raises(error, match="simulated bug"):
        main(argv)
    assert "error:" not in capsys.readouterr().err


def test_a_bug_shows_its_traceback_and_exit_1(tmp_path):
    script = tmp_path / "bug.py"
    script.write_text(
        "import sys\n"
        "import nninteractive_train.data.synthetic as synthetic\n"
        "def bug(*args, **kwargs):\n"
        "    raise RuntimeError('simulated bug')\n"
        "synthetic.write_dataset = bug\n"
        "from nninteractive_train.cli import make_synthetic\n"
        "sys.exit(make_synthetic.main(['-d', '5']))\n")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "nnUNet_raw": str(tmp_path / "raw")})
    assert res.returncode == 1
    assert "Traceback" in res.stderr and "RuntimeError: simulated bug" in res.stderr
    assert "nnInteractive_make_synthetic: error" not in res.stderr


def test_a_lost_rank_ends_the_process_at_once(tmp_path):
    """A lost rank: the one error line, status 2, and no interpreter teardown after it (an atexit handler does
    not run), because tearing down a process group with a dead or hung peer can abort the process."""
    script = tmp_path / "lost.py"
    script.write_text(
        "import atexit, sys\n"
        "from nninteractive_train.cli.common import Parser, run_command\n"
        "from nninteractive_train.training.loop import LostRankError\n"
        "atexit.register(lambda: print('teardown ran', file=sys.stderr))\n"
        "def body(args):\n"
        "    print('some output', end='')\n"  # unflushed: exit_at_once must flush it
        "    raise LostRankError('rank 0 of 2 lost contact', hint='resume with --resume')\n"
        "sys.exit(run_command(Parser(prog='P'), body, []))\n")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stdout == "some output"
    assert res.stderr.splitlines() == ["P: error: rank 0 of 2 lost contact; resume with --resume"]


def test_console_script_form(tmp_path):
    """The real process: status 2, one line on stderr, nothing on stdout."""
    res = subprocess.run([sys.executable, "-m", "nninteractive_train.cli.plan_and_preprocess", "-d", "999"],
                         capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "nnUNet_raw": str(tmp_path)})
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.splitlines() == [
        f"nnInteractive_plan_and_preprocess: error: no dataset with id 999: no folder Dataset999_* in nnUNet_raw "
        f"({tmp_path}); put the raw dataset there (nnU-Net's format) or generate one with "
        f"nnInteractive_make_synthetic"]


@pytest.mark.parametrize("error, line", [
    (UserError("bad"), "P: error: bad"),
    (SetupError("no plans", "/a/b.json"), "P: error: no plans (/a/b.json)"),
    (SetupError("no plans", "/a/b.json", "run X first"), "P: error: no plans (/a/b.json); run X first"),
    (UsageError("x", hint="see P --help"), "P: error: x; see P --help"),
    (CaseError("/x/y.nii.gz", "broken"), "P: error: broken (/x/y.nii.gz)"),
    (SetupError("two\nlines", "/f"), "P: error: two (/f)\n  lines"),
])
def test_format_error(error, line):
    assert format_error("P", error) == line


@pytest.mark.parametrize("error", [UserError("w", "/f", "h"), SetupError("w"), CaseError("/f", "p", "h"),
                                   UsageError("w", hint="h")])
def test_errors_survive_pickling(error):
    """Errors cross process pools (collection build, SuperVoxels) intact."""
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and str(back) == str(error) and back.file == error.file


def test_one_base_for_every_user_error():
    from nninteractive_train.config import ConfigError
    from nninteractive_train.data.dataset_list import DatasetListError
    from nninteractive_train.data.manifest import ManifestError
    from nninteractive_train.data.supervoxels.sam import SamUnavailable
    from nninteractive_train.demo.volume import SourceError
    from nninteractive_train.evaluation import CaseError as EvalCaseError
    from nninteractive_train.evaluation.session import ModelLoadError
    from nninteractive_train.data.case_io import CaseError as DataCaseError

    for cls in (ConfigError, DatasetListError, ManifestError, SamUnavailable, SourceError, ModelLoadError):
        assert issubclass(cls, UserError) and not issubclass(cls, (ValueError, RuntimeError)), cls
    assert EvalCaseError is DataCaseError is CaseError


@pytest.mark.parametrize("word, known, expected", [
    ("num_epoch", ["num_epochs", "seed"], " (did you mean 'num_epochs'?)"),
    ("trainig", ["training", "model"], " (did you mean 'training'?)"),
    ("zzz", ["b", "a"], " (known: a, b)"),
])
def test_did_you_mean(word, known, expected):
    assert did_you_mean(word, known) == expected
