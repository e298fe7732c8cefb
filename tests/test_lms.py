"""The LMS in and out: gradebook columns per exercise, intake of Canvas/Moodle downloads, export of their imports."""
import csv
import re
import zipfile

import nbformat
import pytest

from autograder import lms
from autograder.config import ASSIGNMENT, REPO_ROOT
from autograder.reports import StudentResult, write_lms_csv
from autograder.intake import inspect_submission

NOTEBOOKS = {p.name for p in (REPO_ROOT / "source" / ASSIGNMENT).glob("*.ipynb")}

# The column of every graded cell, written out by hand: the exercise the cell grades, or the written answer.
EXPECTED_COLUMN = {
    "01_imagenette": {"imagenet_is": "imagenet_is", "why_imagenette_first": "why_imagenette_first",
                      "first_prototype_step": "first_prototype_step",
                      "q1_imagenet_vs_imagenette": "q1_imagenet_vs_imagenette (written)",
                      "q14_first_step": "q14_first_step (written)"},
    "02_normalization": {"q2_answer": "q2_answer (written)", "channel_stats_values": "channel_stats",
                         "channel_stats_errors": "channel_stats", "normalize_values": "normalize",
                         "normalize_errors": "normalize", "streaming_stats_values": "streaming_channel_stats",
                         "streaming_stats_stable": "streaming_channel_stats",
                         "streaming_stats_errors": "streaming_channel_stats",
                         "fastai_setup_batches": "fastai_setup_batches", "q3_answer": "q3_answer (written)"},
    "03_progressive_resizing": {"q4_answer": "q4_answer (written)", "what_grows": "what_grows",
                                "size_schedule_values": "size_schedule", "size_schedule_errors": "size_schedule",
                                "progressive_fit_stages": "progressive_fit",
                                "progressive_fit_batch_size": "progressive_fit", "q5_answer": "q5_answer (written)",
                                "my_schedule": "my_schedule"},
    "04_test_time_augmentation": {"fastai_tta_passes": "fastai_tta_passes", "q6_answer": "q6_answer (written)",
                                  "tta_speed": "tta_speed", "q7_why": "q7_why (written)",
                                  "five_crop_values": "five_crop", "five_crop_errors": "five_crop",
                                  "five_crop_tta_values": "five_crop_tta", "five_crop_tta_mode": "five_crop_tta",
                                  "five_crop_tta_no_grad": "five_crop_tta", "my_crop_corners": "my_crop_corners"},
    "05_mixup": {"sample_lam_values": "sample_lam", "sample_lam_errors": "sample_lam", "mixup_images": "mixup",
                 "mixup_targets": "mixup", "mixup_inputs_unchanged": "mixup", "mixup_errors": "mixup",
                 "mixup_loss_values": "mixup_loss", "q8_answer": "q8_answer (written)", "q8_cbs": "q8_cbs",
                 "q9_answer": "q9_answer (written)", "q10_answer": "q10_answer (written)",
                 "rand_box_values": "rand_box", "cutmix_values": "cutmix", "cutmix_errors": "cutmix",
                 "fr2_answer": "fr2_answer (written)"},
    "06_label_smoothing": {"q11_answer": "q11_answer (written)", "smooth_targets_values": "smooth_targets",
                           "smooth_targets_errors": "smooth_targets", "q13_target": "q13_target",
                           "label_smoothing_ce_values": "label_smoothing_ce",
                           "label_smoothing_ce_reductions": "label_smoothing_ce",
                           "label_smoothing_ce_large_logits": "label_smoothing_ce",
                           "label_smoothing_ce_errors": "label_smoothing_ce", "q12_answer": "q12_answer (written)",
                           "fr4_derivation": "fr4_derivation (written)"},
    "07_long_training": {"fr3_answer": "fr3_answer (written)"},
}


def _graded_cells() -> list[tuple[str, str]]:
    cells = []
    for path in sorted((REPO_ROOT / "source" / ASSIGNMENT).glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                cells.append((path.stem, meta["grade_id"]))
    return cells


def test_every_graded_cell_has_its_exercise_column():
    cells = _graded_cells()
    assert {nb: {g for n, g in cells if n == nb} for nb, _ in cells} == \
        {nb: set(ids) for nb, ids in EXPECTED_COLUMN.items()}, "a graded cell was added or removed: list its column"
    for notebook, grade_id in cells:
        assert lms.lms_column(f"{notebook}.ipynb:{grade_id}") == \
            f"{notebook}.ipynb: {EXPECTED_COLUMN[notebook][grade_id]}", grade_id


def test_lms_csv_sums_an_exercise_and_keeps_written_answers_apart(tmp_path):
    scores = {"05_mixup.ipynb:q8_cbs": 1.0, "05_mixup.ipynb:q8_answer": 2.0, "05_mixup.ipynb:mixup_images": 2.0,
              "05_mixup.ipynb:mixup_inputs_unchanged": 1.0, "01_imagenette.ipynb:imagenet_is": 0.0,
              "03_progressive_resizing.ipynb:progressive_fit_batch_size": 1.0,
              "03_progressive_resizing.ipynb:progressive_fit_stages": 0.0}
    write_lms_csv([StudentResult("ann", "graded", scores, 7.0, 10.0)], tmp_path / "lms.csv")
    row = next(csv.DictReader((tmp_path / "lms.csv").open()))
    assert row.pop("student") == "ann" and row.pop("status") == "graded"
    assert row == {"05_mixup.ipynb: q8_cbs": "1.0", "05_mixup.ipynb: q8_answer (written)": "2.0",
                   "05_mixup.ipynb: mixup": "3.0", "01_imagenette.ipynb: imagenet_is": "0.0",
                   "03_progressive_resizing.ipynb: progressive_fit": "1.0", "total": "7.0", "max_total": "10.0"}


# ---------------------------------------------------------------- intake

NB = nbformat.writes(nbformat.v4.new_notebook())


def _roster(path, rows):
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(lms.ROSTER_COLUMNS))
        writer.writeheader()
        writer.writerows([{c: r.get(c, "") for c in lms.ROSTER_COLUMNS} for r in rows])
    return lms.read_roster(path)


ROSTER = [
    {"student": "ann", "name": "Ann Lee", "canvas_id": "101", "sis_user_id": "S1", "sis_login_id": "alee",
     "section": "A", "moodle_participant": "9001", "id_number": "N1", "email": "ann@uni.example"},
    {"student": "bo1", "name": "Bo Smith", "canvas_id": "102", "sis_login_id": "bsmith1", "section": "A",
     "moodle_participant": "9002", "id_number": "N2", "email": "bo1@uni.example"},
    {"student": "bo2", "name": "Bo Smith", "canvas_id": "103", "sis_login_id": "bsmith2", "section": "B",
     "moodle_participant": "9003", "id_number": "N3", "email": "bo2@uni.example"},
    {"student": "cy", "name": "Cy Diaz", "canvas_id": "104", "sis_login_id": "cdiaz", "section": "B",
     "moodle_participant": "9004", "id_number": "N4", "email": "cy@uni.example"},
]


def _files(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(NB)
    return folder


def test_canvas_flat_download_with_a_roster(tmp_path):
    roster = _roster(tmp_path / "roster.csv", ROSTER)
    download = _files(tmp_path / "canvas", [
        "leeann_101_5001_01_imagenette.ipynb",
        "leeann_101_5002_02_normalization.ipynb",
        "leeann_101_5009_02_normalization-1.ipynb",      # a later re-upload: Canvas added -1
        "smithbo_LATE_103_5003_01_imagenette.ipynb",     # ids tell the two Bo Smiths apart
        "smithbo_777_5004_01_imagenette.ipynb",          # an id the roster lacks, a name two students share
        "diazcy_999_5005_01_imagenette.ipynb",           # an id the roster lacks, a unique name
        "notes.txt",
    ])
    before = sorted((p.name, p.read_text()) for p in download.iterdir())
    result = lms.intake(download, tmp_path / "out", roster)
    assert sorted((p.name, p.read_text()) for p in download.iterdir()) == before, "the download was changed"
    assert sorted(result.mapped) == ["ann", "bo2", "cy"]
    assert sorted(p.name for p in (tmp_path / "out" / "ann").iterdir()) == ["01_imagenette.ipynb", "02_normalization.ipynb"]
    assert result.notes["bo2"] == ["late (canvas)"]
    assert result.notes["cy"] == ["matched by name: canvas id 999 is not in the roster"]
    why = dict(result.unmapped)
    assert why["leeann_101_5002_02_normalization.ipynb"].startswith("ann has a later upload of 02_normalization.ipynb")
    assert "matches bo1, bo2" in why["smithbo_777_5004_01_imagenette.ipynb"]
    assert "neither Canvas's form" in why["notes.txt"]
    assert result.absent == ["bo1"]
    assert "3 files NOT mapped" in result.report() and "roster students without a file: bo1" in result.report()
    expected = {"01_imagenette.ipynb", "02_normalization.ipynb"}
    folder, valid, _ = inspect_submission(tmp_path / "out" / "ann", expected)  # the grader takes the folder as it is
    assert valid == {"01_imagenette.ipynb", "02_normalization.ipynb"}


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name in members:
            z.writestr(name, NB)
    return path


def test_moodle_zips_flat_and_in_folders_without_a_roster(tmp_path):
    flat = _zip(tmp_path / "flat.zip", [
        "Ann Lee_9001_assignsubmission_file_01_imagenette.ipynb",
        "Bo Smith_9002_assignsubmission_file_01_imagenette.ipynb",
        "Bo Smith_9003_assignsubmission_file_01_imagenette.ipynb",
        "Cy Diaz_9004_assignsubmission_onlinetext_onlinetext.html",
        "../escape.ipynb",
    ])
    result = lms.intake(flat, tmp_path / "out-flat")
    assert result.mapped == {"ann_lee": ["Ann Lee_9001_assignsubmission_file_01_imagenette.ipynb"]}
    why = dict(result.unmapped)
    assert why["Bo Smith_9002_assignsubmission_file_01_imagenette.ipynb"].startswith(
        "2 students are named 'Bo Smith' (ids 9002, 9003): give a roster")
    assert why["Cy Diaz_9004_assignsubmission_onlinetext_onlinetext.html"].startswith("not a file submission")
    assert why["../escape.ipynb"].startswith("unsafe path")
    assert not (tmp_path / "escape.ipynb").exists()
    assert len(result.unmapped) == 4

    folders = _zip(tmp_path / "folders.zip", [
        "Bo Smith_9002_assignsubmission_file_/01_imagenette.ipynb",
        "Bo Smith_9003_assignsubmission_file_/01_imagenette.ipynb",
        "Bo Smith_9003_assignsubmission_file_/sizing_and_tta/02_normalization.ipynb",
    ])
    roster = _roster(tmp_path / "roster.csv", ROSTER)
    result = lms.intake(folders, tmp_path / "out-folders", roster)
    assert result.unmapped == [] and sorted(result.mapped) == ["bo1", "bo2"]
    assert (tmp_path / "out-folders" / "bo2" / "sizing_and_tta" / "02_normalization.ipynb").is_file()


def test_intake_refuses_bad_input_with_one_line(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old").write_text("x")
    download = _files(tmp_path / "dl", ["leeann_101_5001_01_imagenette.ipynb"])
    with pytest.raises(lms.LmsError, match="is not empty; give a new folder"):
        lms.intake(download, tmp_path / "out")
    (tmp_path / "bad.zip").write_text("not a zip")
    with pytest.raises(lms.LmsError, match="is not a readable zip"):
        lms.intake(tmp_path / "bad.zip", tmp_path / "new")
    assert not (tmp_path / "new").exists()
    (tmp_path / "roster.csv").write_text("name,email\nAnn,a@b\n")
    with pytest.raises(lms.LmsError, match="has no 'student' column"):
        lms.read_roster(tmp_path / "roster.csv")


# ---------------------------------------------------------------- export

def _grades(path, rows):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "status", "total", "max_total", "a.ipynb:x"])
        writer.writerows(rows)
    return lms.read_grades(path)


def _canvas_import(rows):
    """What Canvas's GradebookImporter (lib/gradebook_importer.rb, instructure/canvas-lms) reads from a CSV:
    the header check, the student columns, the Points Possible row and each student's grades."""
    header = rows[0]
    assert len(header) > 3 and re.search("Student", header[0]) and re.search("ID", header[1])
    columns = 3
    if re.search(r"SIS\s+Login\s+ID", header[2]):
        columns += 1
    elif re.search(r"SIS\s+User\s+ID", header[2]) and re.search(r"SIS\s+Login\s+ID", header[3]):
        columns += 2
    assert re.search("Section", header[columns - 1]), "the last student column must be Section"
    assignments = header[columns:]
    points, students = None, {}
    for row in rows[1:]:
        if re.search("Points Possible", row[0]):
            points = row[columns:]
        else:
            students[row[1]] = dict(zip(assignments, row[columns:]))
    return assignments, points, students


def test_canvas_export_reads_as_canvas_reads_it(tmp_path):
    roster = _roster(tmp_path / "roster.csv", ROSTER)
    grades = _grades(tmp_path / "grades.csv", [["ann", "graded", "40.5", "84", "1"], ["bo2", "graded", "12", "84", "0"],
                                                ["cy", "not graded: no notebook", "0", "0", ""],
                                                ["zed", "graded", "80", "84", "1"]])
    rows = lms.canvas_rows(grades, roster, "Sizing & TTA (4711)")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Sizing & TTA (4711)"]
    assignments, points, students = _canvas_import(rows)
    assert assignments == ["Sizing & TTA (4711)"] and points == ["84"]
    assert students == {"101": {"Sizing & TTA (4711)": "40.5"}, "102": {"Sizing & TTA (4711)": ""},
                        "103": {"Sizing & TTA (4711)": "12"}, "104": {"Sizing & TTA (4711)": ""}}
    assert rows[2][0] == "Lee, Ann"
    problems = lms.export_problems(grades, roster)
    assert problems == ["zed: graded but not in the roster, so not exported; add them to the roster",
                        "bo1: no grade; exported blank (the LMS keeps its grade)",
                        "cy: not graded: no notebook; exported blank (the LMS keeps its grade)"]


def test_moodle_export_is_matched_on_its_identifier_column(tmp_path):
    roster = _roster(tmp_path / "roster.csv", ROSTER)
    grades = _grades(tmp_path / "grades.csv", [["ann", "graded", "40.5", "84", "1"], ["bo1", "graded", "7", "84", "0"]])
    lms.write_rows(lms.moodle_rows(grades, roster, "sizing_and_tta"), tmp_path / "moodle.csv")
    with (tmp_path / "moodle.csv").open(newline="") as f:
        table = list(csv.DictReader(f))
    # Moodle's import maps one column to a user field (here "ID number" -> useridnumber), the others to grade items.
    assert list(table[0]) == ["First name", "Last name", "ID number", "Email address", "sizing_and_tta"]
    by_id_number = {r["ID number"]: r for r in table}
    assert set(by_id_number) == {r["id_number"] for r in roster}
    assert by_id_number["N1"]["sizing_and_tta"] == "40.5" and by_id_number["N2"]["sizing_and_tta"] == "7"
    assert by_id_number["N3"]["sizing_and_tta"] == ""
    assert (by_id_number["N1"]["First name"], by_id_number["N1"]["Last name"]) == ("Ann", "Lee")


def test_export_command_line(tmp_path, capsys):
    _roster(tmp_path / "roster.csv", ROSTER[:1])
    _grades(tmp_path / "grades.csv", [["ann", "graded", "40", "84", "1"]])
    args = ["export", "--roster", str(tmp_path / "roster.csv"), "--grades", str(tmp_path / "grades.csv")]
    assert lms.main(args + ["--canvas", str(tmp_path / "c.csv"), "--moodle", str(tmp_path / "m.csv")]) == 0
    assert (tmp_path / "c.csv").read_text().splitlines()[2] == '"Lee, Ann",101,S1,alee,A,40'
    _roster(tmp_path / "bare.csv", [{"student": "ann", "name": "Ann Lee"}])
    assert lms.main(["export", "--roster", str(tmp_path / "bare.csv"), "--grades", str(tmp_path / "grades.csv"),
                     "--canvas", str(tmp_path / "c2.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fill its canvas_id" in err
    assert not (tmp_path / "c2.csv").exists()
