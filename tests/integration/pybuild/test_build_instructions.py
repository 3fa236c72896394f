"""Every instruction in one Dockerfile, built for real: the image config, history and files it
produces; ONBUILD triggers in a child; build args, labels, --iidfile, -q. One instruction's own
cases are in test_instr_<keyword>.py."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import subprocess
import tarfile

import pytest

from test_build_common import base_image_tar, history, pb, write_context  # noqa: F401


ALL_INSTRUCTIONS = """\
FROM busybox
MAINTAINER Jane Doe <jane@example.com>
ARG VERSION=1.0
ARG UNUSED
LABEL org.example.version="${VERSION}" "multi word"=yes
ENV APP_HOME=/srv/app \\
    GREETING="hello world" \\
    DERIVED=${VERSION}-x
SHELL ["/bin/sh", "-ec"]
WORKDIR $APP_HOME
COPY --chmod=0750 run.sh bin/
COPY --chown=app:staff conf/ /etc/myapp/
COPY *.txt notes/
ADD archive.tar.gz /opt/
RUN echo "v=$VERSION g=$GREETING d=$DERIVED" > built.txt && id -u > uid.txt
RUN <<EOF
echo heredoc-run > /srv/app/heredoc.txt
EOF
COPY <<EOT /etc/motd
welcome $GREETING
EOT
USER app
RUN id > /tmp/whoami && touch /tmp/owned
EXPOSE 8080 9000-9001/udp
VOLUME ["/data"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --timeout=3s --retries=2 CMD wget -q -O- http://127.0.0.1:8080/ || exit 1
ONBUILD RUN echo triggered > /tmp/onbuild.txt
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
"""


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o640
            info.uid = info.gid = 42
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def full_context(tmp_path):
    return write_context(tmp_path / "ctx", {
        "Dockerfile": ALL_INSTRUCTIONS,
        "run.sh": "#!/bin/sh\necho run\n",
        "conf/app.conf": "key=value\n",
        "conf/sub/deep.conf": "deep\n",
        "a.txt": "A\n", "b.txt": "B\n", "c.md": "not copied\n",
        "archive.tar.gz": _tar_gz({"pkg/readme": b"from the archive\n"}),
    })


def test_every_instruction(pb, full_context):
    pb.build(full_context, "-t", "all")
    cfg = pb.config("all")
    c = cfg["config"]
    assert cfg["author"] == "Jane Doe <jane@example.com>"
    assert c["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "APP_HOME=/srv/app", "GREETING=hello world", "DERIVED=1.0-x"]
    assert c["Labels"] == {"org.example.version": "1.0", "multi word": "yes"}
    assert c["WorkingDir"] == "/srv/app"
    assert c["User"] == "app"
    assert c["Shell"] == ["/bin/sh", "-ec"]
    assert c["ExposedPorts"] == {"8080/tcp": {}, "9000/udp": {}, "9001/udp": {}}
    assert c["Volumes"] == {"/data": {}}
    assert c["StopSignal"] == "SIGINT"
    assert c["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/ || exit 1"],
                                "Interval": 30 * 10**9, "Timeout": 3 * 10**9, "Retries": 2}
    assert c["OnBuild"] == ["RUN echo triggered > /tmp/onbuild.txt"]
    assert c["Entrypoint"] == ["/bin/sh", "-c"]
    assert c["Cmd"] == ["echo hi"]
    # ARG values reach RUN but never the config
    assert not any(e.startswith(("VERSION=", "UNUSED=")) for e in c["Env"])

    hist = history(cfg)
    assert "ARG VERSION=1.0" in hist and "ARG UNUSED" in hist
    assert "ENV APP_HOME=/srv/app GREETING=hello world DERIVED=1.0-x" in hist
    assert "SHELL [/bin/sh -ec]" in hist
    assert "EXPOSE map[8080/tcp:{} 9000/udp:{} 9001/udp:{}]" in hist
    assert 'CMD ["echo hi"]' in hist
    assert 'ENTRYPOINT ["/bin/sh" "-c"]' in hist
    run = [h for h in hist if h.startswith("RUN |2 VERSION=1.0")]
    assert run and run[0].endswith(" # buildkit") and "/bin/sh -ec echo" in run[0]
    layers_in_history = [h for h in cfg["history"] if not h.get("empty_layer")]
    assert len(layers_in_history) == len(cfg["rootfs"]["diff_ids"]) == len(pb.manifest("all")["layers"])

    files = pb.flatten("all")
    assert files["srv/app/built.txt"][1] == b"v=1.0 g=hello world d=1.0-x\n"
    assert files["srv/app/uid.txt"][1] == b"0\n"
    assert files["srv/app/heredoc.txt"][1] == b"heredoc-run\n"
    assert files["etc/motd"][1] == b"welcome hello world\n"
    run_sh = files["srv/app/bin/run.sh"][0]
    assert run_sh.mode & 0o7777 == 0o750 and (run_sh.uid, run_sh.gid) == (0, 0)
    conf = files["etc/myapp/app.conf"][0]
    assert (conf.uid, conf.gid) == (1000, 50)
    assert files["etc/myapp/sub/deep.conf"][1] == b"deep\n"
    assert "etc/myapp/conf" not in files  # a directory source copies its contents
    assert files["srv/app/notes/a.txt"][1] == b"A\n" and files["srv/app/notes/b.txt"][1] == b"B\n"
    assert "srv/app/notes/c.md" not in files
    readme = files["opt/pkg/readme"]
    assert readme[1] == b"from the archive\n" and readme[0].uid == 42   # ADD unpacked the archive
    assert "opt/archive.tar.gz" not in files
    owned = files["tmp/owned"][0]
    assert (owned.uid, owned.gid) == (1000, 1000)
    assert b"uid=1000(app) gid=1000(app) groups=50(staff)" in files["tmp/whoami"][1] or \
        b"uid=1000(app) gid=1000(app)" in files["tmp/whoami"][1]
    # mount points the runtime needed never reach a layer
    for stub in ("proc", "sys", "dev", "etc/hosts", "etc/resolv.conf"):
        assert stub not in files, stub


def test_onbuild_triggers_run_in_child(pb, full_context, tmp_path):
    pb.build(full_context, "-t", "parent")
    child = write_context(tmp_path / "child", {"Dockerfile": "FROM parent\nUSER root\nRUN cat /tmp/onbuild.txt\n"})
    res = pb.build(child, "-t", "child")
    assert "triggered" not in res.stdout
    files = pb.flatten("child")
    assert files["tmp/onbuild.txt"][1] == b"triggered\n"
    assert "OnBuild" not in pb.config("child")["config"]


def test_build_args_labels_iidfile_and_quiet(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nARG NAME=default\n"
                                                         "RUN echo $NAME > /name\n"})
    iid = tmp_path / "iid"
    res = pb.build(ctx, "-t", "args", "--build-arg", "NAME=given", "--label", "team=core",
                   "--iidfile", str(iid), "-q")
    image_id = res.stdout.strip()
    assert image_id.startswith("sha256:") and iid.read_text() == image_id
    assert pb.manifest("args")["config"]["digest"] == image_id
    assert res.stderr == ""
    assert pb.flatten("args")["name"][1] == b"given\n"
    assert pb.config("args")["config"]["Labels"] == {"team": "core"}
