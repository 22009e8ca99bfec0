"""compare-data's --images refuses a file with a line that says it is a file (issue 19's bad input)."""

from msport.cli import main


def test_images_given_a_file_says_it_is_a_file_not_a_folder(tmp_path, capsys):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"not read")
    code = main(["compare-data", "--torch", "torchvision.transforms:ToTensor", "--ms",
                 "mindspore.dataset.vision:ToTensor", "--images", str(photo)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"msport compare-data: error: --images {photo}: a file, not a folder; "
                   f"give the folder that holds the images"]
