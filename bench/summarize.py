#!/usr/bin/env python3
"""Summarises a fio-jobs/run-engine-bench.sh result directory as Markdown: raw fio numbers,
astra_bench numbers, and engine/raw ratios against the floors (doc/benchmarks.md)."""
import glob
import json
import os
import sys

WRITE_FLOOR, READ_FLOOR, META_LIMIT = 0.60, 0.70, 64.0


def load(path):
    with open(path) as f:
        return json.load(f)


def fio_jobs(path):
    out = {}
    for j in load(path)["jobs"]:
        side = "write" if j["write"]["io_bytes"] > 0 else "read"
        out[j["jobname"]] = {"mib_s": j[side]["bw"] / 1024.0, "iops": j[side]["iops"]}
    return out


def phase(results, name, threads, qd=1):
    for r in results:
        if r["phase"] == name and r["threads"] == threads and r.get("qd", 1) == qd:
            return r
    return None


def main(out):
    lines = []
    p = lines.append
    machine = open(os.path.join(out, "machine.txt")).read().strip().splitlines()
    settings = open(os.path.join(out, "settings")).read().split()
    p("## Machine\n")
    for l in machine:
        p(f"- {l}")
    p("")
    failed = []
    for dirf in sorted(glob.glob(os.path.join(out, "t*.dir"))):
        tag = os.path.basename(dirf)[:-4]
        d = open(dirf).read().strip()
        direct = open(os.path.join(out, tag + ".direct")).read().strip()
        fs = open(os.path.join(out, tag + ".fs")).read().split()
        fstype = fs[1] if len(fs) > 1 else "?"
        ef = os.path.join(out, tag + ".engine-files")
        members = open(ef).read().strip() if os.path.exists(ef) else "sparse"
        members = "fio's 6 files" if members == "same" else "6 new sparse files"
        p(f"## Target `{d}` ({fstype}; fio direct={direct}; engine O_DIRECT on {members})\n")
        raw = {nj: fio_jobs(os.path.join(out, f"{tag}-fio-nj{nj}.json")) for nj in (1, 2)}
        pre = fio_jobs(os.path.join(out, f"{tag}-fio-prefill.json"))["prefill"]
        p(f"Raw fio, aggregate over the 6 files (prefill, 1 MiB writes: {pre['mib_s']:.0f} MiB/s):\n")
        p("| pattern | numjobs | MiB/s | IOPS |")
        p("|---|---:|---:|---:|")
        for nj in (1, 2):
            for job in ("seqwrite", "seqread", "randwrite", "randread"):
                r = raw[nj][job]
                p(f"| {job} | {nj} | {r['mib_s']:.1f} | {r['iops']:.0f} |")
        p("")
        for si, s in enumerate(settings):
            comp, dedup = s.split(":")
            jf = os.path.join(out, f"{tag}-astra-{comp}-{dedup}.json")
            if not os.path.exists(jf):
                continue
            a = load(jf)
            res = a["results"]
            k, m = a["config"]["k"], a["config"]["m"]
            eff = k / (k + m)
            p(f"Engine ({k}+{m}, compression={comp}, dedup={dedup}):\n")
            p("| phase | threads | QD per thread | MiB/s | IOPS | p50 us | p99 us | seconds | flush s | blocks verified | errors |")
            p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for r in res:
                p(f"| {r['phase']} | {r['threads']} | {r.get('qd', 1)} | {r['mib_s']:.1f} | {r['iops']:.0f} | {r['p50_us']:.1f} | "
                  f"{r['p99_us']:.1f} | {r['seconds']:.3f} | {r['flush_seconds']:.3f} | {r['verified_blocks']} | "
                  f"{r['verify_errors']} |")
            p("")
            meta = a.get("meta")
            if meta:
                ok = meta["bytes_per_block"] <= META_LIMIT
                p(f"Metadata RAM: {meta['blocks']} unique blocks written, VmRSS {meta['rss_before']} -> "
                  f"{meta['rss_after']} bytes: **{meta['bytes_per_block']:.1f} bytes/block** = "
                  f"{meta['gib_per_tib']:.2f} GiB of RAM per TiB stored (limit {META_LIMIT:.0f} bytes/block: "
                  f"{'PASS' if ok else 'FAIL'}). Curve (blocks, RSS): {meta['curve']}\n")
                if si == 0 and not ok:
                    failed.append(f"{d} meta {meta['bytes_per_block']:.1f} B/block")
                if "random_bytes_per_block" in meta:
                    rb = meta["random_bytes_per_block"]
                    rok = rb <= META_LIMIT
                    p(f"Metadata RAM, the same number of 1-block writes at random blocks (one block-map run "
                      f"per block, the worst case): **{rb:.1f} bytes/block** (limit {META_LIMIT:.0f}: "
                      f"{'PASS' if rok else 'FAIL'})\n")
                    if si == 0 and not rok:
                        failed.append(f"{d} meta random {rb:.1f} B/block")
            p(f"Ratios (engine {comp}/{dedup} vs raw; write baseline = raw x k/(k+m) = raw x {eff:.3f}; "
              f"reads at fio's queue depth: random, T threads each with 32 reads in flight (ReadBatch of 32) vs "
              f"fio iodepth 32 x numjobs T; sequential, T threads each with 6 x 128 KiB in flight (ReadBatch "
              f"of 6) vs fio iodepth 6 x numjobs T; random writes: T threads each with 32 writes per call "
              f"(WriteBatch of 32; 32 x T threads of one Write each when not measured) vs fio iodepth 32 x "
              f"numjobs T; sequential writes: T threads, one 128 KiB Write each, vs fio numjobs T):\n")
            p("| metric | T | engine MiB/s | raw MiB/s | baseline MiB/s | ratio | floor | verdict |")
            p("|---|---:|---:|---:|---:|---:|---:|---|")
            for T in (1, 2):
                for metric, ename, eT, fjob, is_write in (
                    ("seq write 128k", "seqwrite-128k", T, "seqwrite", True),
                    ("seq read 128k", "seqread-128k", T, "seqread", False),
                    ("rand write 4k QD32", "randwrite-4k", 32 * T, "randwrite", True),
                    ("rand read 4k QD32", "randread-4k", 32 * T, "randread", False),
                ):
                    e = phase(res, ename, eT)
                    # Reads at fio's queue depth through ReadBatch, when measured: random reads
                    # 32 per thread (fio iodepth 32), sequential 6 x 128 KiB (fio iodepth 6).
                    if ename == "randread-4k":
                        e = phase(res, ename, T, 32) or e
                    if ename == "seqread-128k":
                        e = phase(res, ename, T, 6) or e
                    # Random writes at fio's queue depth through WriteBatch (32 per thread).
                    if ename == "randwrite-4k":
                        e = phase(res, ename, T, 32) or e
                    if e is None:
                        continue
                    rawv = raw[T][fjob]["mib_s"]
                    base = rawv * eff if is_write else rawv
                    ratio = e["mib_s"] / base if base else 0
                    floor = WRITE_FLOOR if is_write else READ_FLOOR
                    ok = ratio >= floor
                    p(f"| {metric} | {T} | {e['mib_s']:.1f} | {rawv:.1f} | {base:.1f} | **{ratio:.2f}** | "
                      f"{floor:.2f} | {'PASS' if ok else 'FAIL'} |")
                    if si == 0 and not ok:
                        failed.append(f"{d} {metric} T={T}: {ratio:.2f} < {floor:.2f}")
            p("")
    p("## Verdict\n")
    if failed:
        p("Below the floors (raw setting):\n")
        for f in failed:
            p(f"- {f}")
    else:
        p("All ratios at or above the floors.")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
