"""Plain HTML pages of request queues: the list, and one queue with its head and requests (its ``consoleUrl``)."""

from __future__ import annotations

import json

from flask import Blueprint, current_app, render_template_string

from ..serializers import iso_time
from .access import current_caller, policy, request_queues, resolve_for_read
from .pages import _LAYOUT

bp = Blueprint("request_queue_pages", __name__)
PREVIEW_REQUESTS = 100

_QUEUES = """{% extends layout %}{% block body %}<p><a href="/">Datasets</a></p><h1>Request queues</h1>
<table><tr><th>Name</th><th>Id</th><th>Total</th><th>Handled</th><th>Pending</th><th>Modified</th></tr>
{% for q in queues %}<tr><td><a href="/view/request-queues/{{ q.id }}">{{ q.name or "(unnamed)" }}</a></td>
<td><code>{{ q.id }}</code></td><td>{{ q.total_request_count }}</td><td>{{ q.handled_request_count }}</td>
<td>{{ q.pending_request_count }}</td><td>{{ iso(q.modified_at) }}</td></tr>{% endfor %}</table>{% endblock %}"""

_QUEUE = """{% extends layout %}{% block body %}<p><a href="/view/request-queues">All request queues</a></p>
<h1>{{ q.name or q.id }}</h1><p>Id <code>{{ q.id }}</code>: {{ q.total_request_count }} requests,
{{ q.handled_request_count }} handled, {{ q.pending_request_count }} pending.</p>
<h2>Head</h2><ol>{% for item in head %}<li><code>{{ item.method or "GET" }}</code> {{ item.url }}</li>{% endfor %}</ol>
<h2>Requests</h2><table><tr><th>Id</th><th>URL</th><th>Handled at</th><th>Retries</th><th>User data</th></tr>
{% for r in requests %}<tr><td><code>{{ r.id }}</code></td><td>{{ r.url }}</td><td>{{ r.handledAt or "" }}</td>
<td>{{ r.retryCount or 0 }}</td><td><code>{{ dump(r.userData or {}) }}</code></td></tr>{% endfor %}</table>
{% endblock %}"""


@bp.get("/view/request-queues")
def view_request_queues() -> str:
    """Show every request queue the caller may read."""
    caller = current_caller()
    queues = [q for q in request_queues().all_request_queues() if policy().may_read(q, caller)]
    layout = current_app.jinja_env.from_string(_LAYOUT)
    return render_template_string(_QUEUES, layout=layout, title="Request queues", queues=queues, iso=iso_time)


@bp.get("/view/request-queues/<ref>")
def view_request_queue(ref: str) -> str:
    """Show one queue: its head (without taking locks) and its first requests."""
    repo = request_queues()
    queue, _caller = resolve_for_read(repo, ref)
    head = repo.get_head(queue.id, limit=PREVIEW_REQUESTS, as_client=False).items
    requests = repo.list_requests(queue.id, limit=PREVIEW_REQUESTS).items
    return render_template_string(
        _QUEUE,
        layout=current_app.jinja_env.from_string(_LAYOUT),
        title=queue.name or queue.id,
        q=repo.get_request_queue(queue.id),
        head=head,
        requests=requests,
        dump=lambda value: json.dumps(value, ensure_ascii=False),
    )
