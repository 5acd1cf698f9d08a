"""Plain HTML pages for people with a browser: the dataset list and one dataset (its ``consoleUrl``)."""

from __future__ import annotations

import json
from itertools import islice
from typing import Any
from urllib.parse import quote

from flask import Blueprint, current_app, render_template_string

from ..errors import RecordNotFoundInStore
from ..serializers import iso_time
from ..signing import record_signature
from .access import current_caller, policy, resolve_for_read
from .access import repo as access_repo
from .key_value_stores_api import stores
from .runs_api import runs

bp = Blueprint("pages", __name__)
PREVIEW_ROWS = 50
PREVIEW_RECORDS = 1000

_LAYOUT = """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}code{background:#f4f4f4}</style>
</head><body>{% block body %}{% endblock %}</body></html>"""

_INDEX = """{% extends layout %}{% block body %}<h1>storage-emulator</h1>
<p>Storage root: <code>{{ root }}</code>. API: <code>{{ request.host_url }}v2/datasets</code></p>
<p><a href="/view/request-queues">Request queues</a></p>
<table><tr><th>Name</th><th>Id</th><th>Owner</th><th>Items</th><th>Created</th></tr>
{% for d in datasets %}<tr><td><a href="/view/datasets/{{ d.id }}">{{ d.name or "(unnamed)" }}</a></td>
<td><code>{{ d.id }}</code></td><td>{{ owner(d) }}</td><td>{{ d.item_count }}</td><td>{{ iso(d.created_at) }}</td></tr>
{% endfor %}</table>
<h2>Key-value stores</h2>
<table><tr><th>Name</th><th>Id</th><th>Owner</th><th>Modified</th></tr>
{% for s in stores %}<tr><td><a href="/view/key-value-stores/{{ s.id }}">{{ s.name or "(unnamed)" }}</a></td>
<td><code>{{ s.id }}</code></td><td>{{ owner(s) }}</td><td>{{ iso(s.modified_at) }}</td></tr>
{% endfor %}</table>
<h2>Actor runs</h2>
<table><tr><th>Run</th><th>Actor</th><th>Status</th><th>Exit code</th><th>Started</th></tr>
{% for r in runs %}<tr><td><a href="/view/runs/{{ r.id }}"><code>{{ r.id }}</code></a></td>
<td>{{ r.actor_name or "" }}</td><td>{{ r.status }}</td>
<td>{{ r.exit_code if r.exit_code is not none else "" }}</td><td>{{ iso(r.started_at) }}</td></tr>
{% endfor %}</table>{% endblock %}"""

_RUN = """{% extends layout %}{% block body %}<p><a href="/">All storages</a></p>
<h1>Run {{ r.id }}{% if r.actor_name %} of {{ r.actor_name }}{% endif %}</h1>
<p>{{ r.status }}{% if r.exit_code is not none %}, exit code {{ r.exit_code }}{% endif %};
started {{ iso(r.started_at) }}{% if r.finished_at %}, finished {{ iso(r.finished_at) }}{% endif %}.
Command: <code>{{ r.command|join(" ") }}</code></p>
{% if r.status_message %}<p>Status message: {{ r.status_message }}</p>{% endif %}
<p><a href="/view/datasets/{{ r.default_dataset_id }}">Default dataset</a> ·
<a href="/view/key-value-stores/{{ r.default_key_value_store_id }}">Default key-value store</a> ·
<a href="/v2/request-queues/{{ r.default_request_queue_id }}">Default request queue</a> ·
<a href="/v2/actor-runs/{{ r.id }}">Run object (JSON)</a></p>
{% if r.charged_event_counts %}<table><tr><th>Event</th><th>Charged</th></tr>
{% for name, count in r.charged_event_counts|dictsort %}<tr><td>{{ name }}</td><td>{{ count }}</td></tr>{% endfor %}
</table>{% endif %}{% endblock %}"""

_STORE = """{% extends layout %}{% block body %}<p><a href="/">All storages</a></p>
<h1>{{ s.name or s.id }}</h1><p>Key-value store <code>{{ s.id }}</code>, owner {{ owner(s) }},
{{ records|length }} record(s){% if truncated %} (the first {{ records|length }} shown){% endif %}.
<a href="/v2/key-value-stores/{{ s.id }}/records">All records as ZIP</a></p>
<table><tr><th>Key</th><th>Type</th><th>Size</th><th>Preview</th></tr>
{% for r in records %}<tr><td><a href="{{ url(r) }}">{{ r.key }}</a></td><td><code>{{ r.content_type }}</code></td>
<td>{{ r.size }}</td><td>{% if r.content_type.startswith("image/") %}<img src="{{ url(r) }}" alt="{{ r.key }}"
style="max-height:80px">{% endif %}</td></tr>{% endfor %}</table>{% endblock %}"""

_DATASET = """{% extends layout %}{% block body %}<p><a href="/">All storages</a></p>
<h1>{{ d.name or d.id }}</h1><p>Id <code>{{ d.id }}</code>, {{ d.item_count }} items, owner {{ owner(d) }}.
<a href="/v2/datasets/{{ d.id }}/items?format=csv&attachment=1">CSV</a>
<a href="/v2/datasets/{{ d.id }}/items?format=json">JSON</a></p>
<table><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in rows %}<tr>{% for c in columns %}<td>{{ cell(row, c) }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endblock %}"""


@bp.get("/")
def index() -> str:
    """Show every dataset and key-value store of the storage root that the caller may read."""
    repo = access_repo()
    caller = current_caller()
    may_read = policy().may_read  # enforced mode: only what the caller may see
    return render_template_string(
        _INDEX,
        layout=current_app.jinja_env.from_string(_LAYOUT),
        title="storage-emulator",
        root=repo.root.resolve(),
        datasets=[d for d in repo.all_datasets() if may_read(d, caller)],
        stores=[s for s in stores().all_key_value_stores() if may_read(s, caller)],
        runs=runs().list_runs(owner=caller, desc=True) if caller is not None else [],
        owner=repo.policy.owner_username,
        iso=iso_time,
    )


@bp.get("/view/key-value-stores/<ref>")
def view_key_value_store(ref: str) -> str:
    """Show one key-value store and its records (images inline)."""
    store, _caller = resolve_for_read(stores(), ref)
    page = stores().list_keys(store.id, limit=PREVIEW_RECORDS)
    signing_key = store.url_signing_secret_key

    def url(info: Any) -> str:
        # Signed, so the links and images work in enforced mode without a token in the URL.
        link = f"/v2/key-value-stores/{store.id}/records/{quote(info.key, safe='')}"
        return link + (f"?signature={record_signature(info.key, signing_key)}" if signing_key else "")

    return render_template_string(
        _STORE,
        layout=current_app.jinja_env.from_string(_LAYOUT),
        title=store.name or store.id,
        s=store,
        records=_with_types(store.id, page.items),
        truncated=page.is_truncated,
        owner=stores().policy.owner_username,
        url=url,
    )


@bp.get("/view/runs/<run_id>")
def view_run(run_id: str) -> str:
    """Show one run: how it ended, its charges and links to its default storages."""
    run = runs().get_run(run_id)
    return render_template_string(
        _RUN, layout=current_app.jinja_env.from_string(_LAYOUT), title=f"Run {run.id}", r=run, iso=iso_time
    )


@bp.get("/view/datasets/<ref>")
def view_dataset(ref: str) -> str:
    """Show one dataset and its first items."""
    repo = access_repo()
    dataset, _caller = resolve_for_read(access_repo(), ref)
    page = repo.read_items(dataset.id, limit=PREVIEW_ROWS, count_read=False)
    rows = list(islice(page.items(), PREVIEW_ROWS))
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return render_template_string(
        _DATASET,
        layout=current_app.jinja_env.from_string(_LAYOUT),
        title=page.dataset.name or page.dataset.id,
        d=page.dataset,
        rows=rows,
        columns=columns,
        owner=repo.policy.owner_username,
        cell=_cell,
    )


def _with_types(store_id: str, listed: list[Any]) -> list[Any]:
    """Look up each listed record's type (a key listing reads no sidecars); skip one deleted meanwhile."""
    typed = []
    for info in listed:
        try:
            typed.append(stores().record_info(store_id, info.key))
        except RecordNotFoundInStore:
            continue
    return typed


def _cell(row: dict[str, Any], column: str) -> str:
    """Show a value as JSON would (``true``, ``{"a": 1}``); text as it is; a missing field as nothing."""
    if column not in row:
        return ""
    value = row[column]
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
