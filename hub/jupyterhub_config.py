"""JupyterHub of the course (`make hub`): 127.0.0.1, PAM log-in, each server as its own Unix user.

hub/setup_course.py writes <state>/course.json (users, the exchange, the shared Python) first. The
instructor's server opens the course folder with formgrader; a student's opens their home with the
student JupyterLab (student_lab/: nbgrader's instructor plugins off, formgrader's server extension off).
"""
import json
import os
import pwd
from pathlib import Path

c = get_config()  # noqa: F821

HERE = Path(__file__).resolve().parent
STATE = Path(os.environ.get("HUB_STATE", "/srv/sizing-and-tta"))
COURSE = json.loads((STATE / "course.json").read_text())
REPO = Path(COURSE["repo"])

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(os.environ.get("HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('HUB_PROXY_API_PORT', '8001')}"
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.command = [str(HERE / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")

# A demo log-in: the local users' passwords (PAM). For a real course see README, "A course on JupyterHub".
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = {COURSE["instructor"], *COURSE["students"]}

c.Spawner.cmd = [COURSE["python"], "-m", "jupyterhub.singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.http_timeout = 120
c.Spawner.start_timeout = 180
# Students' training cells run with the reduced budget when the hub was started with WORKBOOK_FAST=1.
PASSED_ON = ("WORKBOOK_FAST",)


def per_user(spawner) -> None:
    """The instructor's server opens the course with formgrader; a student's, their home, plugins off."""
    name = spawner.user.name
    home = Path(pwd.getpwnam(name).pw_dir)
    cache = REPO / ".cache"
    spawner.environment.update({
        "PATH": f"{Path(COURSE['python']).parent}:/usr/local/bin:/usr/bin:/bin",
        "LD_LIBRARY_PATH": COURSE["library_path"],  # the shared Python's libpython (hub/setup_course.py)
        "WORKBOOK_CACHE": str(cache), "FASTAI_HOME": str(cache / "fastai"), "TORCH_HOME": str(cache / "torch"),
        **{k: os.environ[k] for k in PASSED_ON if k in os.environ},
    })
    if name == COURSE["instructor"]:
        spawner.notebook_dir = COURSE["course"]
        # The course's nbgrader_config.py: formgrader reads the config path (and the server's cwd, the home).
        spawner.environment["JUPYTER_CONFIG_PATH"] = f"{COURSE['course']}:{COURSE['student_config']}"
        spawner.args = []
    else:
        spawner.notebook_dir = str(home)
        spawner.environment["JUPYTER_CONFIG_PATH"] = f"{REPO / 'student_lab'}:{COURSE['student_config']}"
        spawner.args = ["--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=False"]


c.Spawner.pre_spawn_hook = per_user

# Optional (HUB_GRADE_ON_SUBMIT=1): grade each submission when it arrives and release its feedback
# (autograder/on_submit.py), as a service of the hub running as the instructor; HUB_GRADE_JOBS kernels
# at once when several submissions wait (default 1: the students' own kernels share the machine).
if os.environ.get("HUB_GRADE_ON_SUBMIT") == "1":
    c.JupyterHub.services = [{
        "name": "grade-on-submit",
        "user": COURSE["instructor"],
        "cwd": COURSE["course"],
        "command": [COURSE["python"], "-m", "autograder.on_submit", "--course", COURSE["course"],
                    "--exchange", COURSE["exchange"], "--poll", os.environ.get("HUB_GRADE_POLL", "5"),
                    "--jobs", os.environ.get("HUB_GRADE_JOBS", "1")],
        "environment": {"PATH": f"{Path(COURSE['python']).parent}:/usr/bin:/bin",
                        "LD_LIBRARY_PATH": COURSE["library_path"],
                        "WORKBOOK_CACHE": str(REPO / ".cache"), "FASTAI_HOME": str(REPO / ".cache" / "fastai"),
                        "TORCH_HOME": str(REPO / ".cache" / "torch"),
                        **{k: os.environ[k] for k in PASSED_ON if k in os.environ}},
    }]
