"""nbgrader's submit with submissions the other students cannot read (the course's students use it).

nbgrader's file-system exchange leaves each submission world-readable (files 0644, its folder 0777)
and hides it only by its name (student, timestamp and a random string) in an inbound folder students
cannot list; a student who learns a name can read, or delete, that submission and its
`submission_secret.txt`, from which the feedback files' names are derived. nbgrader makes the inbound
folder set-group-ID, so that submissions belong to the instructor's group: this submit makes sure every
file of a submission does, then keeps the owner's and the group's access and drops the others' (files
0640, folders 0750, the submission's own folder 0770 so that the instructor may still delete it). Chosen in the students' nbgrader config
(hub/setup_course.py writes it): ``c.ExchangeFactory.submit = "private_submit.PrivateSubmit"``.
"""
import os
import secrets
import stat

from nbgrader.exchange.default.submit import ExchangeSubmit

OTHERS = stat.S_IRWXO


class PrivateSubmit(ExchangeSubmit):
    """ExchangeSubmit whose copy in the inbound folder is readable by its student and the instructor only."""

    def init_dest(self):
        super().init_dest()
        mode = os.stat(self.inbound_path).st_mode
        if not mode & stat.S_ISGID:
            # Without it a submission would get the student's group and the instructor could not collect it.
            self.fail(f"the inbound folder {self.inbound_path} is not set-group-ID (mode {stat.filemode(mode)}); "
                      f"release the assignment again with nbgrader, which creates it so")

    def do_copy(self, src, dest, log=None):
        super().do_copy(src, dest, log)
        if os.path.dirname(os.path.abspath(dest)) != os.path.abspath(self.inbound_path):
            return  # the student's own cache
        # shutil.copytree gave the new folder the mode of the student's folder, without the set-group-ID
        # bit it had from inbound: the files nbgrader writes into it next (timestamp, secret) would get the
        # student's group, out of the instructor's reach once private. Move the copies into a folder made
        # here (it inherits the bit and the group), then give it the submission's name.
        fresh = os.path.join(self.inbound_path, f".{secrets.token_hex(8)}")
        os.mkdir(fresh)
        for name in os.listdir(dest):
            os.rename(os.path.join(dest, name), os.path.join(fresh, name))
        os.rmdir(dest)
        os.rename(fresh, dest)

    def set_perms(self, dest, fileperms, dirperms):
        super().set_perms(dest, fileperms & ~OTHERS, dirperms & ~OTHERS)

    def copy_files(self):
        super().copy_files()
        # nbgrader opens the submission's own folder to everyone (0777) after set_perms: close it again.
        dest = os.path.join(self.inbound_path, self.assignment_filename)
        os.chmod(dest, 0o770)
