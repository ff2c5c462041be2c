#!/usr/bin/env python3
"""Seeds a live `lethe demo` for the schemathesis run (scripts/schemathesis.sh).

Drives a few requests through the workflow over the API (an access and a portability
request completed with exports and certificates, an erasure executed with its
certificate, an erasure planned, a request only received), places a legal hold and starts
a retention run, then writes a schemathesis config whose dictionaries hand these ids (and
the demo CRM's e-mail addresses) to the generated test cases some of the time, so the run
reaches the success paths and checks their responses against the document, not only 404s
and 422s.

Usage: schemathesis_seed.py BASE_URL TOKEN DEMO_CRM_SQLITE CONFIG_OUT
"""

import json
import sqlite3
import sys
import time
import urllib.error
import urllib.request

base, token, crm, config_out = sys.argv[1:5]


def call(method, path, body=None, ok=(200, 201, 202)):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    if status not in ok:
        sys.exit(f"seed: {method} {path} answered {status}: {text[:300]}")
    return json.loads(text) if text else None


def create(kind, email, regime="gdpr"):
    return call("POST", "/api/v1/requests",
                {"kind": kind, "regime": regime, "identities": {"email": email}})["id"]


def wait_state(rid, states, seconds=60):
    deadline = time.time() + seconds
    while True:
        state = call("GET", f"/api/v1/requests/{rid}")["state"]
        if state in states or time.time() > deadline:
            return state
        time.sleep(0.5)


with sqlite3.connect(crm) as db:
    emails = [r[0] for r in db.execute(
        "SELECT email FROM contacts WHERE email IS NOT NULL ORDER BY id LIMIT 12")]
if len(emails) < 8:
    sys.exit(f"seed: the demo CRM has only {len(emails)} contacts with an e-mail address")

request_ids = []
for kind, email in [("access", emails[0]), ("portability", emails[1])]:
    rid = create(kind, email)
    call("POST", f"/api/v1/requests/{rid}/verify", {"method": "email_confirmation"})
    call("POST", f"/api/v1/requests/{rid}/run")
    request_ids.append(rid)

executed = create("erasure", emails[2])
call("POST", f"/api/v1/requests/{executed}/verify", {"method": "document_check"})
call("POST", f"/api/v1/requests/{executed}/plan")
call("POST", f"/api/v1/requests/{executed}/approve", {"note": "reviewed"})
call("POST", f"/api/v1/requests/{executed}/execute")
print(f"seed: executed erasure is {wait_state(executed, ('completed', 'partially_completed', 'failed'))}")
request_ids.append(executed)

planned = create("erasure", emails[3])
call("POST", f"/api/v1/requests/{planned}/verify", {"method": "account_login"})
call("POST", f"/api/v1/requests/{planned}/plan")
request_ids.append(planned)

request_ids.append(create("access", emails[4], regime="ccpa"))

hold = call("POST", "/api/v1/holds", {
    "scope": "subject", "identities": {"email": emails[5]},
    "matter": "schemathesis", "reason": "seeded hold"})["id"]

rule = call("GET", "/api/v1/retention/rules")["rules"][0]["name"]
call("POST", "/api/v1/retention/runs", {"rule": rule}, ok=(202, 409))
time.sleep(1)
runs = [r["id"] for r in call("GET", "/api/v1/retention/runs")["runs"]]
certificates = [c["id"] for c in call("GET", "/api/v1/certificates")["certificates"]]
if not runs or not certificates:
    sys.exit(f"seed: expected a retention run and certificates, got {runs} and {certificates}")


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def binding(dictionary, probability):
    return f'{{ dictionary = "{dictionary}", probability = {probability} }}'


config = f"""# Written by scripts/schemathesis_seed.py for one run against a seeded demo.
[dictionaries.request_ids]
values = {toml_list(request_ids)}

[dictionaries.hold_ids]
values = {toml_list([hold])}

[dictionaries.certificate_ids]
values = {toml_list(certificates[:5])}

[dictionaries.run_ids]
values = {toml_list(runs[:5])}

[dictionaries.emails]
values = {toml_list(emails[6:])}

[dictionaries.dates]
values = ["2026-11-01", "2026-10-15T09:30:00Z", "2026-11-20T12:00:00+01:00"]

[[operations]]
include-path-regex = "^/api/v1/requests/\\\\{{id\\\\}}"
parameters = {{ "path.id" = {binding("request_ids", 0.7)} }}

[[operations]]
include-path-regex = "^/api/v1/holds/\\\\{{id\\\\}}"
parameters = {{ "path.id" = {binding("hold_ids", 0.7)} }}

[[operations]]
include-path-regex = "^/api/v1/certificates/\\\\{{id\\\\}}"
parameters = {{ "path.id" = {binding("certificate_ids", 0.7)} }}

[[operations]]
include-path-regex = "^/api/v1/retention/runs/\\\\{{id\\\\}}"
parameters = {{ "path.id" = {binding("run_ids", 0.7)} }}

[[operations]]
include-path = ["/api/v1/requests", "/api/v1/holds"]
include-method = "POST"
parameters = {{ "body.identities.email" = {binding("emails", 0.6)}, "body.received_at" = {binding("dates", 0.6)}, "body.expires_at" = {binding("dates", 0.6)} }}
"""
with open(config_out, "w", encoding="utf-8") as f:
    f.write(config)
print(f"seed: {len(request_ids)} requests, 1 hold, {len(certificates)} certificates, "
      f"{len(runs)} retention runs; config {config_out}")
