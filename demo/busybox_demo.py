"""Make a busybox bundle from Debian's busybox-static and run it with pyrunc."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PYRUNC = os.path.join(os.path.dirname(sys.executable), "pyrunc")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pyrunc-demo-") as tmp:
        bundle = os.path.join(tmp, "mybundle")
        rootfs = os.path.join(bundle, "rootfs")
        os.makedirs(os.path.join(rootfs, "bin"))
        shutil.copy2("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
        applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout
        for name in applets.split():
            if name != "busybox":
                os.symlink("busybox", os.path.join(rootfs, "bin", name))
        for d in ("proc", "sys", "dev", "etc", "tmp"):
            os.makedirs(os.path.join(rootfs, d), exist_ok=True)
        subprocess.run([PYRUNC, "spec", "--bundle", bundle], check=True)
        with open(os.path.join(bundle, "config.json")) as f:
            config = json.load(f)
        config["process"]["terminal"] = False
        config["process"]["args"] = ["sh", "-c", "echo \"hello from $(hostname), pid $$ in its own pid namespace\"; "
                                     "echo \"kernel: $(uname -r), root: $(ls /)\""]
        config["hostname"] = "pyrunc-demo"
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        # `pyrunc run mybundle` from the bundle's parent folder: the ID is the folder name.
        return subprocess.run([PYRUNC, "run", "mybundle"], cwd=tmp).returncode


if __name__ == "__main__":
    sys.exit(main())
