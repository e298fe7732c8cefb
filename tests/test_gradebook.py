"""A grading root's gradebook starts as a copy of nbgrader's own new gradebook, made once in the cache."""
import sqlite3

from nbgrader.api import Gradebook

from autograder.gradebook import empty_gradebook, make_api


def _dump(db) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def test_a_new_grading_root_starts_with_the_gradebook_nbgrader_makes(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path / "cache"))
    api = make_api(tmp_path / "root")
    started = tmp_path / "root" / "gradebook.db"
    assert started.is_file() and started.samefile(api.coursedir.db_url.removeprefix("sqlite:///"))
    Gradebook(f"sqlite:///{tmp_path / 'own.db'}", api.coursedir.course_id).close()
    assert _dump(started) == _dump(tmp_path / "own.db")
    assert any("alembic_version" in line for line in _dump(started))
    assert empty_gradebook(api.coursedir.course_id).parent.parent == tmp_path / "cache" / "gradebooks"


def test_a_gradebook_already_there_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "root"
    root.mkdir()
    con = sqlite3.connect(root / "gradebook.db")
    con.execute("CREATE TABLE earlier_grades (student TEXT)")
    con.commit()
    con.close()
    make_api(root)
    assert "CREATE TABLE earlier_grades (student TEXT);" in _dump(root / "gradebook.db")


def test_without_a_writable_cache_nbgrader_makes_the_gradebook_itself(tmp_path, monkeypatch):
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path / "cache"))
    api = make_api(tmp_path / "root")
    assert not (tmp_path / "root" / "gradebook.db").exists()
    assert [p.name for p in (tmp_path / "root").iterdir()] == ["exchange"]      # no partial copy left behind
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        assert gb.students == []
    assert (tmp_path / "root" / "gradebook.db").is_file()
