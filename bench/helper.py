#!/usr/bin/env python3
"""Helpers for bench/run.sh: dataset selection, deterministic modification and revert,
parsing of /usr/bin/time -v output, and the Markdown report.

    helper.py select OUT_LIST BYTES FILES SAMPLE ROOT...   NUL-separated list for tar (relative to /)
    helper.py stats DIR                                    "files symlinks dirs bytes" (regular-file bytes)
    helper.py modify-tree DIR STATE_DIR                    change ~1 % of the files, saving originals
    helper.py modify-file FILE STATE_DIR                   overwrite ~1 % of the file in 8 places
    helper.py revert STATE_DIR                             undo modify-* (no-op without saved state)
    helper.py parse-time TIME_FILE                         "wall_s rss_kib user_s sys_s"
    helper.py report RAW_TSV META_FILE                     Markdown to stdout

Everything is deterministic: paths are visited in byte order, sampling hashes the path with CRC32,
and the bytes written by the modifications are derived from SHA-256 of a fixed string.
"""
import hashlib
import json
import os
import re
import shutil
import stat
import statistics
import sys
import zlib


def walk_sorted(root):
    """Yield (path, lstat) for every entry under root (root excluded), depth first, byte order."""
    try:
        names = sorted(os.listdir(os.fsencode(root)))
    except OSError:
        return
    for name in names:
        path = os.path.join(os.fsencode(root), name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        yield path, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk_sorted(path)


def cmd_select(out_list, budget_bytes, budget_files, sample, *roots):
    """Pick regular files and symlinks from ROOTs (in the given order, each walked in byte order).

    A file is taken when its path's CRC32 is 0 mod SAMPLE (SAMPLE=1 takes all) and it still fits in
    the byte budget; selection stops when the file budget is reached. Ancestor directories are
    listed before their first entry so tar keeps their modes and times."""
    budget_bytes, budget_files, sample = int(budget_bytes), int(budget_files), int(sample)
    chosen, emitted_dirs = [], set()
    nbytes = nfiles = 0
    seen_roots = set()
    for root in roots:
        root = os.path.realpath(root)
        if not os.path.isdir(root) or root in seen_roots:
            continue
        seen_roots.add(root)
        for path, st in walk_sorted(root):
            if nfiles >= budget_files:
                break
            mode = st.st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                continue
            if not os.access(path, os.R_OK, follow_symlinks=False):
                continue
            rel = os.path.relpath(path, b"/")
            # skip anything already chosen through an earlier root (e.g. /usr/lib after /usr/lib/gcc)
            if rel in emitted_dirs:
                continue
            if sample > 1 and zlib.crc32(rel) % sample != 0:
                continue
            size = st.st_size if stat.S_ISREG(mode) else 0
            if nbytes + size > budget_bytes:
                continue
            parts = rel.split(b"/")
            for i in range(1, len(parts)):
                d = b"/".join(parts[:i])
                if d not in emitted_dirs:
                    emitted_dirs.add(d)
                    chosen.append(d)
            emitted_dirs.add(rel)  # marks the file as taken, too
            chosen.append(rel)
            nbytes += size
            nfiles += 1
    with open(out_list, "wb") as f:
        for p in chosen:
            f.write(p + b"\0")
    print(f"selected {nfiles} files/symlinks, {nbytes} bytes", file=sys.stderr)


def cmd_stats(d):
    files = links = dirs = nbytes = 0
    for _, st in walk_sorted(d):
        if stat.S_ISREG(st.st_mode):
            files += 1
            nbytes += st.st_size
        elif stat.S_ISLNK(st.st_mode):
            links += 1
        elif stat.S_ISDIR(st.st_mode):
            dirs += 1
    print(files, links, dirs, nbytes)


def det_bytes(label, n):
    """n deterministic pseudo-random bytes (SHA-256 in counter mode over a label)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"tresor-bench:{label}:{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


def save_state(state_dir, entries):
    os.makedirs(state_dir, exist_ok=True)
    meta = []
    for n, (path, offset, length) in enumerate(entries):
        st = os.lstat(path)
        with open(path, "rb") as f:
            if length is None:  # whole file
                data = f.read()
            else:
                f.seek(offset)
                data = f.read(length)
        blob = os.path.join(state_dir, f"{n}.orig")
        with open(blob, "wb") as f:
            f.write(data)
        meta.append({"path": os.fsdecode(path), "offset": offset, "whole": length is None,
                     "blob": blob, "atime_ns": st.st_atime_ns, "mtime_ns": st.st_mtime_ns})
    tmp = os.path.join(state_dir, "state.json.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f)
    os.replace(tmp, os.path.join(state_dir, "state.json"))


def cmd_modify_tree(d, state_dir):
    """Every 100th regular file (byte order, starting with the 50th): even ones get 256 bytes
    appended, odd ones get up to 4 KiB in their middle overwritten (same size)."""
    files = [p for p, st in walk_sorted(d) if stat.S_ISREG(st.st_mode)]
    picked = files[50::100]
    save_state(state_dir, [(p, 0, None) for p in picked])
    changed = 0
    for k, p in enumerate(picked):
        size = os.path.getsize(p)
        if k % 2 == 0 or size == 0:
            with open(p, "ab") as f:
                f.write(det_bytes(f"append{k}", 256))
        else:
            n = min(size, 4096)
            off = (size - n) // 2
            with open(p, "r+b") as f:
                f.seek(off)
                f.write(det_bytes(f"rewrite{k}", n))
        changed += 1
    print(f"modified {changed} of {len(files)} files", file=sys.stderr)


def cmd_modify_file(path, state_dir):
    """Overwrite 8 regions of size/800 bytes each (1 % in total), spread evenly over the file."""
    size = os.path.getsize(path)
    region = size // 800
    offsets = [((2 * i + 1) * size // 16) // 4096 * 4096 for i in range(8)]
    save_state(state_dir, [(path.encode(), off, region) for off in offsets])
    with open(path, "r+b") as f:
        for i, off in enumerate(offsets):
            f.seek(off)
            f.write(det_bytes(f"region{i}", region))
    print(f"overwrote 8 x {region} bytes of {size}", file=sys.stderr)


def cmd_revert(state_dir):
    sf = os.path.join(state_dir, "state.json")
    if not os.path.exists(sf):
        shutil.rmtree(state_dir, ignore_errors=True)
        return
    with open(sf) as f:
        meta = json.load(f)
    for m in meta:
        with open(m["blob"], "rb") as f:
            data = f.read()
        if m["whole"]:
            with open(m["path"], "r+b") as f:
                f.write(data)
                f.truncate()
        else:
            with open(m["path"], "r+b") as f:
                f.seek(m["offset"])
                f.write(data)
        os.utime(m["path"], ns=(m["atime_ns"], m["mtime_ns"]), follow_symlinks=False)
    shutil.rmtree(state_dir)
    print(f"reverted {len(meta)} modifications", file=sys.stderr)


def cmd_parse_time(path):
    text = open(path).read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    user = float(re.search(r"User time \(seconds\): (\S+)", text).group(1))
    sys_ = float(re.search(r"System time \(seconds\): (\S+)", text).group(1))
    print(f"{secs:.2f} {rss} {user:.2f} {sys_:.2f}")


# ---------------------------------------------------------------------------------------------
# report

STEPS = [("first", "first backup"), ("unchanged", "unchanged rerun"),
         ("changed", "rerun, ~1 % changed"), ("restore", "restore latest")]
MIB = 1024 * 1024


def fmt(x, digits=2):
    if x is None:
        return "–"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if 0 < abs(x) < 0.1:
        return f"{x:.{digits + 1}f}"
    return f"{x:.{digits}f}"


def cmd_report(raw_path, meta_path):
    meta = {}
    for line in open(meta_path):
        if "\t" in line:
            k, v = line.rstrip("\n").split("\t", 1)
            meta[k] = v
    # raw: dataset step tool rep wall rss_kib user sys bytes   (step=size_first|size_final: wall=bytes)
    data = {}
    for line in open(raw_path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 9 or f[0] == "dataset":
            continue
        ds, step, tool, rep = f[0], f[1], f[2], int(f[3])
        rec = {"wall": float(f[4]), "rss": int(f[5]), "cpu": float(f[6]) + float(f[7]),
               "sys": float(f[7]), "bytes": int(f[8]),
               "load": float(f[9]) if len(f) > 9 and f[9] else None}
        data.setdefault((ds, step, tool), []).append(rec)

    def med(ds, step, tool, key):
        recs = data.get((ds, step, tool))
        if not recs:
            return None
        return statistics.median(r[key] for r in recs)

    def lo_hi(ds, step, tool, key):
        vals = [r[key] for r in data.get((ds, step, tool), []) if r[key] is not None]
        return (min(vals), max(vals)) if vals else (None, None)

    def nreps(ds, step, tool):
        return len(data.get((ds, step, tool), []))

    datasets = []
    for (ds, _, _) in data:
        if ds not in datasets:
            datasets.append(ds)

    out = []
    w = out.append
    w(f"# tresor vs bupstash vs restic ({meta.get('mode', '?')} run, median of {meta.get('runs', '?')})")
    w("")
    w(f"* date: {meta.get('date', '?')}")
    w(f"* machine: {meta.get('nproc', '?')} CPUs ({meta.get('cpu', '?')}), "
      f"{meta.get('mem', '?')} RAM, kernel {meta.get('kernel', '?')}, filesystem {meta.get('fs', '?')}")
    w(f"* load average at start: {meta.get('load_start', '?')}; at end: {meta.get('load_end', '?')} "
      "(other builds may share the machine)")
    w(f"* tresor: {meta.get('tresor_version', '?')} (git HEAD at run time: {meta.get('git', '?')}), "
      "`tresor init` defaults (zstd 3, 16 MiB packs), opened with "
      + ("an unlocked key file (`--key-file`), as bupstash's key file"
         if meta.get('tresor_keys', 'file') == 'file' else "the password (Argon2id 32 MiB × 4 passes)"))
    w(f"* bupstash: {meta.get('bupstash_version', '?')}, `bupstash put` defaults "
      "(send log and stat cache on, zstd), key file without a password")
    w(f"* restic: {meta.get('restic_version', '?')}, `restic init` defaults "
      "(repository v2, `--compression auto`), cache under bench/work")
    w("")
    w("## Datasets")
    w("")
    w("| dataset | regular files | symlinks | directories | bytes (regular files) | what |")
    w("|---|---:|---:|---:|---:|---|")
    for ds in datasets:
        w(f"| {ds} | {meta.get(ds + '_files', '?')} | {meta.get(ds + '_links', '?')} | "
          f"{meta.get(ds + '_dirs', '?')} | {meta.get(ds + '_bytes', '?')} "
          f"({int(meta.get(ds + '_bytes', 0)) / MIB:.0f} MiB) | {meta.get(ds + '_what', '')} |")
    w("")
    w("## Floors")
    w("")
    w("Throughput = dataset bytes / wall seconds, in MiB/s. Ratio = tresor / peer. "
      "The last column is the same ratio computed from CPU time (user + sys) instead of wall "
      "time: not a floor, but steadier when other jobs share the machine. Floors against "
      "bupstash and the RSS floor against restic are issue 19's.")
    w("")
    w("| dataset | step | metric | peer | tresor | peer's | ratio | floor | result | ratio by CPU time |")
    w("|---|---|---|---|---:|---:|---:|---|---|---:|")
    verdicts = []

    def row(ds, step_label, metric, peer, t, r, floor_txt, ok, cpu_ratio=None):
        ratio = (t / r) if (t is not None and r) else None
        res = "–"
        if ok is not None and ratio is not None:
            res = "PASS" if ok(ratio) else "**FAIL**"
            verdicts.append(res == "PASS")
        w(f"| {ds} | {step_label} | {metric} | {peer} | {fmt(t)} | {fmt(r)} | "
          f"{fmt(ratio, 3) + '×' if ratio is not None else '–'} | {floor_txt} | {res} | "
          f"{fmt(cpu_ratio, 3) + '×' if cpu_ratio is not None else ''} |")

    # (peer, step) -> (floor text, test on the ratio); None: shown without a floor
    time_floors = {
        ("bupstash", "first"): ("≥ 1.5×", lambda q: q >= 1.5),
        ("bupstash", "unchanged"): ("≤ 0.5×", lambda q: q <= 0.5),
        ("bupstash", "changed"): ("(none)", None),
        ("bupstash", "restore"): ("≥ 1.5×", lambda q: q >= 1.5),
        ("restic", "first"): ("≥ 2×", lambda q: q >= 2.0),
        ("restic", "unchanged"): ("≤ 0.3×", lambda q: q <= 0.3),
        ("restic", "changed"): ("(none)", None),
        ("restic", "restore"): ("≥ 1.5×", lambda q: q >= 1.5),
    }
    rss_floor = {"bupstash": ("≤ 1×", lambda q: q <= 1.0), "restic": ("≤ 0.5×", lambda q: q <= 0.5)}
    peers = [p for p in ("bupstash", "restic") if any(k[2] == p for k in data)]
    for ds in datasets:
        nbytes = int(meta.get(ds + "_bytes", 0))
        tput = lambda x: (nbytes / MIB / x) if x else None
        for step, label in STEPS:
            for peer in peers:
                tw, rw = med(ds, step, "tresor", "wall"), med(ds, step, peer, "wall")
                tc, rc = med(ds, step, "tresor", "cpu"), med(ds, step, peer, "cpu")
                floor_txt, ok = time_floors[(peer, step)]
                if step in ("first", "restore"):
                    cpu_t = (rc / tc) if (tc and rc) else None     # throughput ratio per CPU second
                    row(ds, label, "throughput MiB/s", peer, tput(tw), tput(rw), floor_txt, ok, cpu_t)
                else:
                    cpu_w = (tc / rc) if (tc and rc) else None     # time ratio
                    row(ds, label, "wall s", peer, tw, rw, floor_txt, ok, cpu_w)
            for peer in peers:
                tr, rr = med(ds, step, "tresor", "rss"), med(ds, step, peer, "rss")
                row(ds, label, "peak RSS MiB", peer, tr / 1024 if tr else None,
                    rr / 1024 if rr else None, *rss_floor[peer])
        for step, label in (("size_first", "repo size after first backup"),
                            ("size_final", "repo size after all runs")):
            for peer in peers:
                t, r = med(ds, step, "tresor", "bytes"), med(ds, step, peer, "bytes")
                row(ds, label, "MiB (du -sb)", peer, t / MIB if t else None,
                    r / MIB if r else None, "≤ 1×", lambda q: q <= 1.0)
    w("")
    w(f"**{sum(verdicts)} of {len(verdicts)} floors pass.**")
    w("")
    w("## All measurements (medians)")
    w("")
    w("Wall min–max over the runs shows the noise; load = 1-minute load average before the step "
      "(min–max), high values mean other jobs shared the machine.")
    w("")
    w("| dataset | step | tool | runs | wall s | wall min–max | MiB/s | peak RSS MiB | "
      "CPU s (user+sys) | of it sys | CPU / wall | load |")
    w("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for ds in datasets:
        nbytes = int(meta.get(ds + "_bytes", 0))
        for step, label in STEPS:
            for tool in ("tresor", "bupstash", "restic"):
                wall = med(ds, step, tool, "wall")
                if wall is None:
                    continue
                rss = med(ds, step, tool, "rss")
                cpu = med(ds, step, tool, "cpu")
                sys_ = med(ds, step, tool, "sys")
                wlo, whi = lo_hi(ds, step, tool, "wall")
                llo, lhi = lo_hi(ds, step, tool, "load")
                load = f"{llo:.1f}–{lhi:.1f}" if llo is not None else "–"
                w(f"| {ds} | {label} | {tool} | {nreps(ds, step, tool)} | {fmt(wall)} | "
                  f"{fmt(wlo)}–{fmt(whi)} | {fmt(nbytes / MIB / wall) if wall else '∞'} | "
                  f"{fmt(rss / 1024)} | {fmt(cpu)} | {fmt(sys_)} | "
                  f"{fmt(cpu / wall) if wall else '–'} | {load} |")
    w("")
    print("\n".join(out))


def main():
    cmds = {"select": cmd_select, "stats": cmd_stats, "modify-tree": cmd_modify_tree,
            "modify-file": cmd_modify_file, "revert": cmd_revert, "parse-time": cmd_parse_time,
            "report": cmd_report}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
