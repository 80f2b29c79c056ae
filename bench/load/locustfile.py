"""Readers reading: each locust user is one reader working through their own worklist as the
viewer does it (worklist, viewer page, series manifest, every slice over WADO, a draft save, the
submit). Used by bench/load_bench.py; readers are ``loadreader01``… with the bench's password.

``MRITRUS_LOAD_THINK="lo,hi"``: seconds a reader spends on a case between the last slice arriving
and the submit (a draft is autosaved half-way). The default 0.5–1.5 s is a stress model (a real
reading takes minutes); the pause between cases is 0.5–1.5 s in both models.
FastHttpUser (geventhttpclient) rather than HttpUser: on a 2-core machine the load generator shares
the CPU with the server, and ``requests`` costs several times more CPU per request.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import threading

import gevent
from locust import FastHttpUser, between, events, task

PASSWORD = os.environ.get("MRITRUS_LOAD_PASSWORD", "load-test-password")
_numbers = itertools.count(1)
_lock = threading.Lock()
SUBMITTED: list[str] = []  # tokens of reads the server accepted (each must be in the DB once)
CONFIG_RE = re.compile(r'<script id="viewer-config" type="application/json">(.*?)</script>', re.S)
RESUME_RE = re.compile(r'id="resume"[^>]*href="(/reading/case/[^"/]+/)"')
CSRF_INPUT_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
THINK = tuple(float(v) for v in os.environ.get("MRITRUS_LOAD_THINK", "0.5,1.5").split(","))


class Reader(FastHttpUser):
    wait_time = between(0.5, 1.5)  # a reader pauses between cases

    def on_start(self) -> None:
        with _lock:
            self.username = f"loadreader{next(_numbers):02d}"
        page = self.client.get("/accounts/login/", name="login page").text or ""
        match = CSRF_INPUT_RE.search(page)
        self.client.post(
            "/accounts/login/",
            data={
                "username": self.username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": match.group(1) if match else "",
            },
            headers={"Referer": f"{self.host}/accounts/login/"},
            name="login",
        )
        self.next_url: str | None = None

    def _csrf(self) -> str:
        for cookie in self.client.cookiejar:
            if cookie.name == "csrftoken":
                return str(cookie.value)
        return ""

    def _post_json(self, url: str, body: dict, name: str) -> dict | None:
        response = self.client.post(
            url,
            data=json.dumps(body),
            headers={
                "Content-Type": "application/json",
                "X-CSRFToken": self._csrf(),
                "Referer": f"{self.host}{url}",
            },
            name=name,
        )
        return response.json() if response.ok else None

    @task
    def read_one_case(self) -> None:
        if self.next_url is None:
            page = self.client.get("/reading/", name="worklist").text or ""
            match = RESUME_RE.search(page)
            if match is None:  # worklist finished
                self.wait()
                return
            self.next_url = match.group(1)
        viewer = self.client.get(self.next_url, name="viewer page").text or ""
        match = CONFIG_RE.search(viewer)
        if match is None:
            self.next_url = None
            return
        config = json.loads(match.group(1))
        for role in ("primary", "underlay"):
            if not config.get(role):
                continue
            manifest = self.client.get(config[role], name="manifest").json()
            for image_id in manifest["imageIds"]:
                self.client.get(image_id.removeprefix("wadouri:"), name="wado")
        read = {"pirads": 3, "zone": "pz", "side": "left", "likert": 5, "comment": "load test"}
        think = random.uniform(*THINK)
        gevent.sleep(think / 2)
        self._post_json(config["draftUrl"], {**read, "active_seconds": 5}, "draft")
        gevent.sleep(think / 2)
        answer = self._post_json(config["submitUrl"], {**read, "active_seconds": 9}, "submit")
        if answer is not None:
            with _lock:
                SUBMITTED.append(config["submitUrl"])
            following = answer.get("next_url", "")
            self.next_url = following if "/reading/case/" in following else None
        else:
            self.next_url = None


@events.quitting.add_listener
def _report(environment: object, **kwargs: object) -> None:
    out = os.environ.get("MRITRUS_LOAD_SUBMITTED")
    if out:
        with open(out, "w") as fh:
            json.dump(SUBMITTED, fh)
