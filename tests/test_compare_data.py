"""msport compare-data and msport.diagnose.compare_data on real pipelines and scikit-learn's sample photos.

One subprocess test covers the entry point; the rest call the library or ``msport.cli.main`` in-process.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torchvision.transforms as T

from msport.cli import main
from msport.diagnose.compare_data import compare_data, load_images
from msport.errors import UserError

REPO = Path(__file__).resolve().parents[1]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

PIPELINES = '''
import numpy as np
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

def torch_eval():
    import torchvision.transforms as T
    return T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])

def ms_eval():  # what a port writes by hand: MindSpore's ops at their defaults
    import mindspore.dataset.vision as v
    return [v.Decode(), v.Resize(256), v.CenterCrop(224), v.ToTensor(), v.Normalize(MEAN, STD, is_hwc=False)]

def ms_square():  # a Resize to 224x224 where torchvision keeps the aspect ratio
    import mindspore.dataset.vision as v
    return [v.Resize((256, 256)), v.CenterCrop(224), v.ToTensor(), v.Normalize(MEAN, STD, is_hwc=False)]

def not_a_pipeline():
    return 42

def _resize():
    import torchvision.transforms as T
    return T.Resize(32)

RESIZE = _resize()  # a transform named directly, not a function returning one
'''


@pytest.fixture(scope="module")
def photo():
    return load_images(None, limit=1)


@pytest.fixture
def pipes(tmp_path):
    path = tmp_path / "pipes.py"
    path.write_text(PIPELINES)
    return str(path)


def ms_vision():
    from mindspore.dataset import vision

    from msport._mindspore import ms  # noqa: F401 - MindSpore starts with msport's CPU settings

    return vision


def eval_compose():
    return T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])


def test_mindspores_default_resize_is_named_the_first_divergence(photo):
    v = ms_vision()
    result = compare_data(eval_compose(), [v.Resize(256), v.CenterCrop(224), v.ToTensor(),
                                           v.Normalize(MEAN, STD, is_hwc=False)], photo)
    assert result.summary["first_divergence"] == "Resize" and result.summary["first_divergence_stage"] == 0
    assert "msport.data.transforms.Resize" in result.summary["suggestion"]
    resize, _, to_tensor, normalize = result.records
    assert resize["max_diff"] > 10 and resize["flagged"]
    assert to_tensor["stage_max_diff"] <= 1e-6 and not to_tensor["flagged"]  # fed torchvision's input, it agrees
    assert not normalize["flagged"] and normalize["max_diff"] > 0.1  # ... though the chains stay apart
    assert result.grid[0] == "Resize"


def test_a_transform_named_directly_is_taken_as_it_is(pipes, capsys):
    from msport.commands.compare_data import side

    assert type(side(f"{pipes}:RESIZE", "--torch")).__name__ == "Resize"
    assert isinstance(side(f"{pipes}:ms_eval", "--ms"), list)


def test_the_twins_of_from_torchvision_are_not_flagged(photo):
    from msport.data.transforms import from_torchvision

    result = compare_data(eval_compose(), from_torchvision(eval_compose()), photo)
    assert not result.flagged and result.summary["first_divergence"] is None
    assert all(r["max_diff"] == 0 for r in result.records)


def test_random_twins_are_replayed_stage_by_stage(photo):
    from msport.data.transforms import from_torchvision

    compose = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ColorJitter(0.4, 0.4, 0.4, 0.1),
                         T.ToTensor(), T.Normalize(MEAN, STD)])
    result = compare_data(compose, from_torchvision(compose), photo)
    assert [r["mode"] for r in result.records] == ["replayed"] * 3 + ["image"] * 2
    assert not result.flagged and max(r["max_diff"] for r in result.records) <= 1e-6


@pytest.mark.parametrize("seeded", [False, True], ids=["fresh", "after-set_seed"])
def test_unreplayable_random_ops_are_judged_by_statistics_over_draws(photo, seeded):
    v = ms_vision()
    if seeded:  # what any earlier MindSpore pipeline in the process may have done: eager ops then repeat
        import mindspore.dataset as msds

        msds.config.set_seed(7)
    same = compare_data(T.ColorJitter(brightness=0.4), [v.RandomColorAdjust(brightness=(0.6, 1.4))], photo, draws=32)
    assert same.records[0]["mode"] == "statistics" and not same.flagged
    brighter = compare_data(T.ColorJitter(brightness=0.4), [v.RandomColorAdjust(brightness=(1.5, 1.9))], photo,
                            draws=32)
    assert brighter.summary["first_divergence"] == "ColorJitter"
    assert "standard errors" in brighter.records[0]["reason"]


def test_sides_of_different_length_compare_their_outputs(photo):
    v = ms_vision()
    result = compare_data(T.Compose([T.Resize(64), T.CenterCrop(64)]), [v.Resize(64), v.CenterCrop(64), v.HWC2CHW()],
                          photo)
    assert len(result.records) == 1 and result.records[0]["name"] == "output"
    assert "only the outputs are compared" in result.notes[0]


def test_cli_writes_json_and_a_report_with_the_image_grid(pipes, tmp_path, capsys):
    code = main(["compare-data", "--torch", f"{pipes}:torch_eval", "--ms", f"{pipes}:ms_eval", "--max-images", "1",
                 "--json", str(tmp_path / "out.json"), "--report", str(tmp_path / "report")])
    out = capsys.readouterr().out
    assert code == 1 and "RESULT: 2 flagged; first: Resize" in out  # Resize, then CenterCrop's own offset
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["summary"]["first_divergence"] == "Resize"
    assert [r["name"] for r in document["records"]] == ["Resize", "CenterCrop", "ToTensor", "Normalize"]
    assert (tmp_path / "report" / "first_divergence.png").stat().st_size > 1000
    assert "first_divergence.png" in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--torch", "{pipes}:torch_eval", "--ms", "{pipes}:not_a_pipeline"], "returned a int, not a transform"),
    (["--torch", "{pipes}:torch_eval", "--ms", "{pipes}:ms_square"],
     r"outputs part in shape at stage 0 \(Resize / Resize\).*torchvision \(256, 383, 3\), MindSpore \(256, 256, 3\)"),
    (["--torch", "{pipes}:torch_eval", "--ms", "{pipes}:missing"], "has no attribute 'missing'"),
])
def test_bad_input_is_one_line_and_exit_2(pipes, args, message, capsys):
    code = main(["compare-data", *[a.format(pipes=pipes) for a in args], "--max-images", "1"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    import re

    assert re.search(message, err), err


def test_an_image_folder_without_images_is_one_line_and_exit_2_from_the_entry_point(tmp_path, pipes):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no image here")
    done = subprocess.run([sys.executable, "-m", "msport", "compare-data", "--torch", f"{pipes}:torch_eval",
                           "--ms", f"{pipes}:ms_eval", "--images", str(tmp_path / "empty")],
                          capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    want = (f"msport compare-data: error: --images {tmp_path / 'empty'}: no images there (looked for .jpg, .jpeg, "
            f".png, .bmp, .webp, .ppm, .tif, .tiff); point it at a folder of photos")
    assert done.stderr.strip().splitlines() == [want]


def test_a_torch_dataset_against_a_mindspore_pipeline_item_by_item(photo):
    import mindspore.dataset as ds
    import torch
    from PIL import Image

    from msport._mindspore import ms  # noqa: F401
    from msport.data.transforms import from_torchvision

    images = [array for _, _, array in load_images(None)]

    class Photos(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, k):
            return eval_compose()(Image.fromarray(images[k])), 0

    pipeline = ds.NumpySlicesDataset({"image": np.stack(images)}, shuffle=False).map(
        operations=from_torchvision(eval_compose()), input_columns=["image"])
    result = compare_data(Photos(), pipeline, load_images(None))
    assert not result.flagged and result.records[0]["max_diff"] == 0
    with pytest.raises(UserError, match=r"both be transforms \(or op lists\) or both data sets"):
        compare_data(Photos(), from_torchvision(eval_compose()), photo)


def test_audit_data_check_flags_a_pipeline_that_skips_normalize():
    from msport.data.transforms import from_torchvision
    from msport.diagnose.audit.data import data_records

    images = load_images(None)
    good = data_records(eval_compose(), from_torchvision(eval_compose()), images)
    assert len(good) == 6 and not any(r["flagged"] for r in good)
    bad = data_records(eval_compose(), from_torchvision(eval_compose())[:-1], images)  # no Normalize
    assert {"std of channel 0", "std of channel 1", "std of channel 2"} <= {r["name"] for r in bad if r["flagged"]}
    train = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ColorJitter(0.4, 0.4, 0.4),
                       T.ToTensor(), T.Normalize(MEAN, STD)])
    independent = data_records(train, from_torchvision(train), images)  # each side draws its own crops
    assert not any(r["flagged"] for r in independent)


def test_msport_audit_runs_the_data_check_from_its_options(tmp_path, capsys):
    examples = REPO / "examples" / "data_pipelines.py"
    main(["audit", "--model", "resnet10_w16", "--torch-data", f"{examples}:torch_eval",
          "--ms-data", f"{examples}:twin_eval", "--json", str(tmp_path / "audit.json")])
    capsys.readouterr()
    records = json.loads((tmp_path / "audit.json").read_text())["records"]
    data = [r for r in records if r["check"] == "data"]
    assert len(data) == 6 and not any(r["flagged"] for r in data)
    assert main(["audit", "--model", "resnet10_w16", "--torch-data", f"{examples}:torch_eval"]) == 2
    assert "needs both --torch-data and --ms-data" in capsys.readouterr().err


def test_an_image_folder_is_read_in_order_and_a_file_pil_cannot_read_is_one_line(tmp_path):
    from PIL import Image

    photo = load_images(None, limit=1)[0][2]
    Image.fromarray(photo[:50, :60]).save(tmp_path / "b.png")
    Image.fromarray(photo[50:90, :70]).save(tmp_path / "a.jpg")
    images = load_images(str(tmp_path))
    assert [(name, array.shape) for name, _, array in images] == [("a.jpg", (40, 70, 3)), ("b.png", (50, 60, 3))]
    (tmp_path / "c.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match=r"c\.jpg: not an image PIL can read"):
        load_images(str(tmp_path))
