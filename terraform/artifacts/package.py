#!/usr/bin/env python3
"""Packages the cross-built binaries as Terraform expects them, and checks the packages.

  package.py lambda --bin PATH --out ZIP [--dir NAME=PATH ...]
      A Lambda zip for provided.al2023: the binary as `bootstrap` (mode 0755), plus whole folders
      (the etl function reads its saved queries from `sql/` beside it).
  package.py image --bin PATH --sql DIR --ca FILE --tag TAG --out DIR
      The etl Fargate image as an OCI image layout (one layer, arm64, no base image, non-root
      user), written without a container daemon; DIR.tar beside it is the same layout as one
      archive for `docker load` or `podman load`.
  package.py check ZIP|DIR ...
      Each zip holds an aarch64 ELF named `bootstrap` that is static and stripped; each image
      layout's digests and sizes match its blobs, its platform is linux/arm64 and its entrypoint
      is such an ELF. Prints each artifact's size; exits 1 with what is wrong otherwise.

Every archive is reproducible: fixed timestamps, sorted entries, owner root.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import struct
import sys
import tarfile
import zipfile

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
EM_AARCH64 = 183
PT_INTERP = 3
IMAGE_USER = "65532:65532"
IMAGE_BIN = "usr/local/bin/etl"
IMAGE_WORKDIR = "opt/eventlake"
IMAGE_CA = "etc/ssl/certs/ca-certificates.crt"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class Bad(Exception):
    pass


def elf_problems(data, what):
    """What keeps `data` from being a static, stripped aarch64 executable (empty when nothing)."""
    if len(data) < 64 or data[:4] != b"\x7fELF":
        return [f"{what}: not an ELF file"]
    if data[4] != 2 or data[5] != 1:
        return [f"{what}: not a 64-bit little-endian ELF"]
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    problems = []
    if e_machine != EM_AARCH64:
        problems.append(f"{what}: built for machine {e_machine}, not aarch64 ({EM_AARCH64})")
    if e_type not in (2, 3):
        problems.append(f"{what}: ELF type {e_type} is not an executable")
    e_phoff, e_shoff = struct.unpack_from("<QQ", data, 32)
    e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHHHH", data, 54)
    for i in range(e_phnum):
        (p_type,) = struct.unpack_from("<I", data, e_phoff + i * e_phentsize)
        if p_type == PT_INTERP:
            problems.append(f"{what}: dynamically linked (has an interpreter); Lambda's provided.al2023 and the image need a static binary")
    if e_shnum and e_shstrndx < e_shnum:
        names_off = struct.unpack_from("<Q", data, e_shoff + e_shstrndx * e_shentsize + 24)[0]
        for i in range(e_shnum):
            (name,) = struct.unpack_from("<I", data, e_shoff + i * e_shentsize)
            end = data.index(b"\0", names_off + name)
            if data[names_off + name:end] in (b".symtab", b".debug_info"):
                problems.append(f"{what}: not stripped ({data[names_off + name:end].decode()} present)")
                break
    return problems


def zip_entry(name, mode):
    info = zipfile.ZipInfo(name, ZIP_DATE)
    info.create_system = 3
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def files_under(root):
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            path = os.path.join(base, f)
            yield path, os.path.relpath(path, root)


def package_lambda(args):
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".part"
    with zipfile.ZipFile(tmp, "w", compresslevel=9) as z:
        with open(args.bin, "rb") as f:
            z.writestr(zip_entry("bootstrap", 0o755), f.read())
        for spec in args.dir:
            name, _, path = spec.partition("=")
            for full, rel in files_under(path):
                with open(full, "rb") as f:
                    z.writestr(zip_entry(f"{name}/{rel}", 0o644), f.read())
    os.replace(tmp, args.out)


def tar_bytes(entries):
    """A tar of (path, mode, bytes or None for a folder), with parent folders, reproducibly."""
    folders = set()
    for path, _, _ in entries:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folders.add("/".join(parts[:i]))
    items = [(f, 0o755, None) for f in folders] + list(entries)
    items.sort(key=lambda e: e[0])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for path, mode, data in items:
            info = tarfile.TarInfo(path)
            info.mode, info.mtime, info.uid, info.gid = mode, 0, 0, 0
            info.uname = info.gname = "root"
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def put_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return f"sha256:{digest}"


def package_image(args):
    with open(args.bin, "rb") as f:
        binary = f.read()
    problems = elf_problems(binary, args.bin)
    if problems:
        raise Bad("; ".join(problems))
    entries = [(IMAGE_BIN, 0o755, binary)]
    with open(args.ca, "rb") as f:
        entries.append((IMAGE_CA, 0o644, f.read()))
    for full, rel in files_under(args.sql):
        with open(full, "rb") as f:
            entries.append((f"{IMAGE_WORKDIR}/sql/{rel}", 0o644, f.read()))
    layer_tar = tar_bytes(entries)
    layer_gz = gzip.compress(layer_tar, compresslevel=9, mtime=0)

    layout = args.out
    if os.path.exists(layout):
        for full, _ in list(files_under(layout)):
            os.remove(full)
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    layer_digest = put_blob(layout, layer_gz)
    config = {
        "created": "1970-01-01T00:00:00Z",
        "architecture": "arm64",
        "os": "linux",
        "config": {
            "User": IMAGE_USER,
            "Env": [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                f"SSL_CERT_FILE=/{IMAGE_CA}",
                f"EVENTLAKE_SQL_DIR=/{IMAGE_WORKDIR}/sql",
            ],
            "Entrypoint": [f"/{IMAGE_BIN}"],
            "WorkingDir": f"/{IMAGE_WORKDIR}",
            "Labels": {"org.opencontainers.image.title": "eventlake-etl", "org.opencontainers.image.version": args.tag},
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "terraform/artifacts/build.sh"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": put_blob(layout, config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": LAYER, "digest": layer_digest, "size": len(layer_gz)}],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": MANIFEST,
                "digest": put_blob(layout, manifest_bytes),
                "size": len(manifest_bytes),
                "platform": {"architecture": "arm64", "os": "linux"},
                "annotations": {
                    "org.opencontainers.image.ref.name": args.tag,
                    "io.containerd.image.name": f"eventlake-etl:{args.tag}",
                },
            }
        ],
    }
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f, sort_keys=True, indent=2)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    archive = [(rel, 0o644, open(full, "rb").read()) for full, rel in files_under(layout)]
    with open(layout.rstrip("/") + ".tar", "wb") as f:
        f.write(tar_bytes(archive))


def read_blob(layout, descriptor, what):
    digest = descriptor.get("digest", "")
    algo, _, hexdigest = digest.partition(":")
    path = os.path.join(layout, "blobs", algo, hexdigest)
    if algo != "sha256" or not os.path.isfile(path):
        raise Bad(f"{layout}: {what} blob {digest!r} is missing")
    with open(path, "rb") as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != hexdigest:
        raise Bad(f"{layout}: {what} blob {digest} does not match its digest")
    if descriptor.get("size") != len(data):
        raise Bad(f"{layout}: {what} blob {digest} is {len(data)} bytes, the descriptor says {descriptor.get('size')}")
    return data


def check_image(layout):
    with open(os.path.join(layout, "oci-layout")) as f:
        if json.load(f).get("imageLayoutVersion") != "1.0.0":
            raise Bad(f"{layout}: not an OCI image layout 1.0.0")
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    if len(index.get("manifests", [])) != 1:
        raise Bad(f"{layout}: expected one manifest in index.json")
    manifest = json.loads(read_blob(layout, index["manifests"][0], "manifest"))
    config = json.loads(read_blob(layout, manifest["config"], "config"))
    if (config.get("os"), config.get("architecture")) != ("linux", "arm64"):
        raise Bad(f"{layout}: platform {config.get('os')}/{config.get('architecture')}, Fargate runs linux/arm64")
    if config["config"].get("User") in (None, "", "0", "root", "0:0"):
        raise Bad(f"{layout}: the image runs as root")
    layers = manifest.get("layers", [])
    if len(layers) != len(config["rootfs"]["diff_ids"]):
        raise Bad(f"{layout}: {len(layers)} layers but {len(config['rootfs']['diff_ids'])} diff ids")
    files = {}
    for layer, diff_id in zip(layers, config["rootfs"]["diff_ids"]):
        tar = gzip.decompress(read_blob(layout, layer, "layer"))
        if "sha256:" + hashlib.sha256(tar).hexdigest() != diff_id:
            raise Bad(f"{layout}: a layer does not match its diff id {diff_id}")
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            for m in t.getmembers():
                if m.isfile():
                    files[m.name] = (m.mode, t.extractfile(m).read())
    entrypoint = config["config"].get("Entrypoint") or []
    if not entrypoint or entrypoint[0].lstrip("/") not in files:
        raise Bad(f"{layout}: the entrypoint {entrypoint} is not a file of the image")
    mode, binary = files[entrypoint[0].lstrip("/")]
    if not mode & 0o111:
        raise Bad(f"{layout}: the entrypoint {entrypoint[0]} is not executable")
    problems = elf_problems(binary, f"{layout}:{entrypoint[0]}")
    if not any(name.endswith(".sql") for name in files):
        problems.append(f"{layout}: no saved query (.sql) in the image")
    if problems:
        raise Bad("; ".join(problems))
    return len(binary), sum(l["size"] for l in layers)


def check_zip(path):
    with zipfile.ZipFile(path) as z:
        try:
            info = z.getinfo("bootstrap")
        except KeyError:
            raise Bad(f"{path}: no `bootstrap` at the top of the zip") from None
        if not (info.external_attr >> 16) & 0o111:
            raise Bad(f"{path}: `bootstrap` is not executable")
        data = z.read(info)
    problems = elf_problems(data, f"{path}:bootstrap")
    if problems:
        raise Bad("; ".join(problems))
    return len(data), os.path.getsize(path)


def mib(n):
    return f"{n / 1048576:.1f} MiB"


def check(args):
    failed = False
    for path in args.paths:
        try:
            if os.path.isdir(path):
                binary, packed = check_image(path)
                print(f"{path}: linux/arm64 image, etl {mib(binary)}, layer {mib(packed)} compressed")
            else:
                binary, packed = check_zip(path)
                print(f"{path}: aarch64 bootstrap {mib(binary)}, zip {mib(packed)}")
        except Bad as e:
            print(f"error: {e}", file=sys.stderr)
            failed = True
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, tarfile.TarError) as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    lam = sub.add_parser("lambda")
    lam.add_argument("--bin", required=True)
    lam.add_argument("--out", required=True)
    lam.add_argument("--dir", action="append", default=[], metavar="NAME=PATH")
    img = sub.add_parser("image")
    for a in ("--bin", "--sql", "--ca", "--tag", "--out"):
        img.add_argument(a, required=True)
    chk = sub.add_parser("check")
    chk.add_argument("paths", nargs="+")
    args = p.parse_args()
    try:
        if args.cmd == "lambda":
            package_lambda(args)
        elif args.cmd == "image":
            package_image(args)
        else:
            return check(args)
    except (Bad, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
