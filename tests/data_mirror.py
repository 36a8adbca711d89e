"""A local stand-in for every place evalkit downloads benchmark data from, built from ../shared/data.

The server answers on 127.0.0.1 in the layout of each real source, as evalkit reaches it through
`EVALKIT_DATA_MIRROR=<base>` (`https://host/path` is fetched from `<base>/host/path`):

- raw GitHub files at `/raw.githubusercontent.com/<repo>/<commit>/<path>`;
- the archives AI2, Berkeley and AllenNLP publish, rebuilt here from the shared files in their real
  layout (MMLU `data.tar` with `data/{dev,val,test}/...` and an auxiliary folder that must not be
  extracted; ARC's zip under `ARC-V1-Feb2018-2/`; `winogrande_1.1/`; `drop_dataset/`);
- a Hugging Face Hub resolve endpoint, `/datasets/<repo>/resolve/<revision>/<path>` (HEAD and GET,
  with the `X-Repo-Commit` and `ETag` headers `huggingface_hub` reads), reached through HF_ENDPOINT.

GETs honour `Range` (206). `cut` makes the first GET of a path send its full Content-Length but only
half the bytes and drop the connection; `tamper` serves changed bytes; every request is recorded.
A rebuilt archive cannot have the published archive's sha256, so `override_registry` writes a
catalogue (EVALKIT_REGISTRY) that replaces only the archive-level digests with those of the
rebuilt archives; every file-level digest stays the shipped one. Nothing here is written outside
the test's tmp dir.
"""

from __future__ import annotations

import csv
import hashlib
import http.server
import io
import json
import tarfile
import threading
import urllib.parse
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "registry" / "datasets.yaml"
# The few-shot file upstream has four more columns; evalkit drops them (their licenses are not permissive).
DROPPED = ["logiqa-en", "logiqa-zh", "jec-qa-kd", "jec-qa-ca"]


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def upstream_fewshot(permissive: bytes) -> bytes:
    """AGIEval's few-shot CSV as upstream has it: the permissive columns plus the four dropped ones
    (placeholder text here), in upstream's order (after lsat-rc)."""
    rows = list(csv.reader(io.StringIO(permissive.decode("utf-8"), newline="")))
    at = rows[0].index("lsat-rc") + 1
    out = [row[:at] + (DROPPED if i == 0 else [f"not permissive {i}"] * 4) + row[at:] for i, row in enumerate(rows)]
    buf = io.StringIO()
    csv.writer(buf).writerows(out)
    return buf.getvalue().encode("utf-8")


def drop_fixture() -> bytes:
    """A DROP dev file in the official format: two passages, number, span and date answers."""
    data = {
        "nfl_1": {"passage": "The Bears scored 7 points in the first quarter and 10 in the second. Smith kicked a field goal.",
                  "qa_pairs": [
                      {"question": "How many points did the Bears score in the first quarter?", "query_id": "q1",
                       "answer": {"number": "7", "spans": [], "date": {}}, "validated_answers": []},
                      {"question": "Who kicked a field goal?", "query_id": "q2",
                       "answer": {"number": "", "spans": ["Smith"], "date": {}}, "validated_answers": []}]},
        "hist_1": {"passage": "The treaty was signed on 4 July 1776 after a long war.",
                   "qa_pairs": [
                       {"question": "When was the treaty signed?", "query_id": "q3",
                        "answer": {"number": "", "spans": [], "date": {"day": "4", "month": "July", "year": "1776"}},
                        "validated_answers": []},
                       {"question": "How long was the war?", "query_id": "q4",
                        "answer": {"number": "", "spans": ["long"], "date": {}}, "validated_answers": []}]},
    }
    return json.dumps(data).encode()


def mmmlu_fixture(lang: str) -> bytes:
    """An MMMLU CSV in the real layout (`,Question,A,B,C,D,Answer,Subject`), 8 rows over 2 subjects."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["", "Question", "A", "B", "C", "D", "Answer", "Subject"])
    for i in range(8):
        subject = "astronomy" if i < 4 else "virology"
        w.writerow([i, f"[{lang}] Question {i} sur {subject} ?", f"un {i}", f"deux {i}", f"trois {i}", f"quatre {i}",
                    "ABCD"[i % 4], subject])
    return buf.getvalue().encode("utf-8")


class Mirror:
    """Files by URL path, built from the shipped catalogue and ../shared/data."""

    def __init__(self, data_dir: Path, mmmlu_langs=("fr", "de")):
        self.data_dir = data_dir
        self.files: dict[str, bytes] = {}          # "/host/path" -> bytes (raw GitHub, archives)
        self.hub: dict[str, bytes] = {}            # "/datasets/<repo>/resolve/<rev>/<path>" -> bytes
        self.archives: dict[str, bytes] = {}       # dataset name -> rebuilt archive
        self.cut: set[str] = set()
        self.tamper: dict[str, bytes] = {}
        self.ignore_range = False
        self.log: list[dict] = []
        self.mmmlu_langs = mmmlu_langs
        self.catalogue = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
        self._build()

    def _shared(self, rel: str) -> bytes:
        return (self.data_dir / rel).read_bytes()

    def _build(self) -> None:
        for name, ds in self.catalogue.items():
            for rel, f in (ds.get("files") or {}).items():
                if "url" in f:
                    body = self._shared(f"{name}/{rel}")
                    self.files[self.path_of(f["url"])] = upstream_fewshot(body) if f.get("drop_columns") else body
                elif "hub" in f:
                    h = f["hub"]
                    body = (mmmlu_fixture(name.split("/")[1]) if name.startswith("mmlu-translated/")
                            else self._shared(f"{name}/{rel}"))
                    if name.startswith("mmlu-translated/") and name.split("/")[1] not in self.mmmlu_langs:
                        continue
                    self.hub[f"/datasets/{h['repo']}/resolve/{h['revision']}/{h['path']}"] = body
        self._archives()

    def _archives(self) -> None:
        d = self.data_dir
        mmlu = {f"data/{s}/{p.name}": p.read_bytes() for s in ("dev", "val", "test") for p in sorted((d / "mmlu" / s).glob("*.csv"))}
        mmlu["data/auxiliary_train/arc_easy.csv"] = b"not,extracted\n"
        mmlu["data/README.txt"] = b"MMLU\n"
        arc = {f"ARC-V1-Feb2018-2/{k}": (d / "arc" / k).read_bytes() for k in self.catalogue["arc"]["files"]}
        arc["ARC-V1-Feb2018-2/ARC_Corpus.txt"] = b"a corpus that is not extracted\n"
        wg = {f"winogrande_1.1/{k}": (d / "winogrande" / k).read_bytes() for k in self.catalogue["winogrande"]["files"]}
        wg["__MACOSX/winogrande_1.1/._dev.jsonl"] = b"junk"
        built = {"mmlu": _tar(mmlu), "arc": _zip(arc), "winogrande": _zip(wg),
                 "drop": _zip({"drop_dataset/drop_dataset_dev.json": drop_fixture(),
                               "drop_dataset/drop_dataset_train.json": b"{}"})}
        for name, body in built.items():
            self.archives[name] = body
            self.files[self.path_of(self.catalogue[name]["archive"]["url"])] = body

    @staticmethod
    def path_of(url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        return f"/{parts.netloc}{parts.path}"

    def override_registry(self, folder: Path) -> Path:
        """A registry whose datasets.yaml is the shipped catalogue with the rebuilt archives' digests
        (and DROP's member, a fixture) in place of the published ones; returns the folder."""
        cat = json.loads(json.dumps(self.catalogue))
        for name, body in self.archives.items():
            cat[name]["archive"]["sha256"] = hashlib.sha256(body).hexdigest()
            cat[name]["archive"]["size"] = len(body)
        fixture = drop_fixture()
        cat["drop"]["files"]["drop_dataset_dev.json"].update(sha256=hashlib.sha256(fixture).hexdigest(), size=len(fixture))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "datasets.yaml").write_text(yaml.safe_dump(cat, sort_keys=False), encoding="utf-8")
        return folder

    # ------------------------------------------------------------------ serving
    def body(self, path: str) -> bytes | None:
        if path in self.tamper:
            return self.tamper[path]
        return self.files.get(path) or self.hub.get(path)

    def start(self) -> "Mirror":
        handler = type("Handler", (_Handler,), {"mirror": self})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET/HEAD of the mirror's files, with Range, the Hub's headers, and the injected faults."""

    protocol_version = "HTTP/1.1"
    mirror: Mirror

    def log_message(self, *a):
        pass

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def _empty(self, status: int, **headers) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k.replace("_", "-"), v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _serve(self, head: bool) -> None:
        m = self.mirror
        path = urllib.parse.urlsplit(self.path).path
        m.log.append({"method": self.command, "path": path, "range": self.headers.get("Range")})
        body = m.body(urllib.parse.unquote(path))
        if body is None:
            return self._empty(404)
        rng = self.headers.get("Range")
        start = int(rng[6:].split("-")[0]) if rng and rng.startswith("bytes=") and not m.ignore_range else 0
        if start >= len(body) > 0:
            return self._empty(416, Content_Range=f"bytes */{len(body)}")
        self.send_response(206 if start else 200)
        if path.startswith("/datasets/"):
            self._hub_headers(path, body)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if head:
            return
        if path in m.cut and not start:
            m.cut.discard(path)              # half the bytes, then the connection drops
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body[start:])

    def _hub_headers(self, path: str, body: bytes) -> None:
        revision = path.split("/resolve/")[1].split("/")[0]
        honest = self.mirror.hub.get(path, body)
        if len(honest) > 100_000:            # the Hub's ETag: sha256 for LFS files, the git blob sha1 otherwise
            etag = hashlib.sha256(honest).hexdigest()
        else:
            etag = hashlib.sha1(f"blob {len(honest)}\0".encode() + honest).hexdigest()
        self.send_header("X-Repo-Commit", revision)
        self.send_header("ETag", f'"{etag}"')
