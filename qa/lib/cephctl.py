#!/usr/bin/python3
"""Mon-command helper for qa/cluster.

Why this exists: every `ceph` CLI call pays ~0.3-0.5 s of Python start-up and
a fresh mon session; bootstrapping a cluster needs a dozen commands.  This
helper does them over one librados connection.  It must run under
/usr/bin/python3 (Debian's python3-rados lives there, not in pyenv).

Sub-commands (all take --conf CONF first):
  ping                      exit 0 if the mon answers `status`
  cmds                      read JSON mon commands from stdin, one per line;
                            optional keys: "_inbuf" (str), "_out" (file to
                            write the output buffer to), "_ok" (list of errno
                            values to tolerate, e.g. [17] for EEXIST)
  epoch                     print the current osdmap epoch
  wait-up IDS [--after E]   wait until every osd in IDS (comma list) is up
                            and in, with up_from > E
  wait-pools POOL...        list every object of each pool: completes only
                            when every PG of the pool is active (there is no
                            mgr, so `ceph pg stat` cannot tell us)
"""
import argparse
import json
import sys
import time

import rados


def connect(conf, timeout):
    c = rados.Rados(conffile=conf)
    # Fail fast instead of the 300 s default when the mon is gone.
    c.conf_set("client_mount_timeout", str(timeout))
    c.conf_set("rados_mon_op_timeout", str(timeout))
    c.connect(timeout=timeout)
    return c


def mon(c, cmd, inbuf=b"", timeout=30):
    return c.mon_command(json.dumps(cmd), inbuf, timeout=timeout)


def osd_dump(c):
    ret, out, err = mon(c, {"prefix": "osd dump", "format": "json"})
    if ret != 0:
        raise RuntimeError("osd dump: %d %s" % (ret, err))
    return json.loads(out)


def do_cmds(c, _args):
    for n, line in enumerate(sys.stdin, 1):
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        inbuf = req.pop("_inbuf", "").encode()
        out_file = req.pop("_out", None)
        ok = req.pop("_ok", [])
        ret, out, err = mon(c, req, inbuf)
        if ret != 0 and -ret not in ok:
            sys.stderr.write("mon command %s failed: %d %s\n" % (json.dumps(req), ret, err))
            return 1
        if out_file:
            with open(out_file, "wb") as f:
                f.write(out)
    return 0


def do_wait_up(c, args):
    ids = [int(x) for x in args.ids.split(",") if x != ""]
    deadline = time.monotonic() + args.timeout
    while True:
        d = osd_dump(c)
        osds = {o["osd"]: o for o in d["osds"]}
        pending = [i for i in ids
                   if i not in osds or not osds[i]["up"] or not osds[i]["in"]
                   or osds[i]["up_from"] <= args.after]
        if not pending:
            return 0
        if time.monotonic() > deadline:
            sys.stderr.write("timeout waiting for osd(s) %s to be up+in (epoch %d)\n"
                             % (pending, d["epoch"]))
            return 1
        time.sleep(0.1)


def do_wait_pools(c, args):
    for pool in args.pools:
        with c.open_ioctx(pool) as io:
            for _ in io.list_objects():
                pass
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conf", required=True)
    ap.add_argument("--timeout", type=float, default=60)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ping")
    sub.add_parser("cmds")
    sub.add_parser("epoch")
    w = sub.add_parser("wait-up")
    w.add_argument("ids")
    w.add_argument("--after", type=int, default=0)
    p = sub.add_parser("wait-pools")
    p.add_argument("pools", nargs="+")
    args = ap.parse_args()

    try:
        c = connect(args.conf, max(1, int(args.timeout)))
    except rados.Error as e:
        sys.stderr.write("cannot connect to cluster (%s): %s\n" % (args.conf, e))
        return 2
    try:
        if args.cmd == "ping":
            ret, _, err = mon(c, {"prefix": "status"}, timeout=max(1, int(args.timeout)))
            return 0 if ret == 0 else 1
        if args.cmd == "cmds":
            return do_cmds(c, args)
        if args.cmd == "epoch":
            print(osd_dump(c)["epoch"])
            return 0
        if args.cmd == "wait-up":
            return do_wait_up(c, args)
        if args.cmd == "wait-pools":
            return do_wait_pools(c, args)
    finally:
        c.shutdown()
    return 1


if __name__ == "__main__":
    sys.exit(main())
