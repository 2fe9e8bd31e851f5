#!/usr/bin/env python3
"""Generates a single-file HTML API reference from docs/openapi.yaml.

Offline (python3 + python3-yaml, no network, no JavaScript):

    python3 docs/tools/openapi_html.py docs/openapi.yaml build/api.html

One section per route (method, path, summary, description, parameters,
request body, responses with their schema names), then every schema.
"""
import html
import json
import sys

import yaml

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def esc(s):
    return html.escape(str(s)) if s is not None else ""


def ref_name(schema):
    if not isinstance(schema, dict):
        return ""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{esc(name)}">{esc(name)}</a>'
    if schema.get("type") == "array":
        return "array of " + ref_name(schema.get("items", {}))
    if "oneOf" in schema or "anyOf" in schema:
        return " | ".join(ref_name(s) for s in schema.get("oneOf", schema.get("anyOf")))
    return esc(schema.get("type", "object"))


def resolve(doc, obj):
    if isinstance(obj, dict) and "$ref" in obj:
        node = doc
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        return node
    return obj


def para(text):
    return "".join(f"<p>{esc(p.strip())}</p>" for p in str(text).split("\n\n") if p.strip())


def render(doc):
    info = doc.get("info", {})
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(info.get('title', 'API'))} {esc(info.get('version', ''))}</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:auto;padding:1rem}"
        "code,pre{background:#f4f4f4}h3{border-top:1px solid #ccc;padding-top:.5rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .4rem;"
        "text-align:left;vertical-align:top}.m{font-weight:bold;text-transform:uppercase}"
        "</style></head><body>",
        f"<h1>{esc(info.get('title', 'API'))} <small>{esc(info.get('version', ''))}</small></h1>",
        para(info.get("description", "")),
        "<h2>Routes</h2><ul>",
    ]
    routes = []
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                routes.append((path, method, item[method], item.get("parameters", [])))
    for path, method, op, _ in routes:
        anchor = f"{method}-{path}"
        out.append(f'<li><a href="#{esc(anchor)}"><span class="m">{method}</span> '
                   f"<code>{esc(path)}</code></a> — {esc(op.get('summary', ''))}</li>")
    out.append("</ul>")
    for path, method, op, shared_params in routes:
        anchor = f"{method}-{path}"
        out.append(f'<h3 id="{esc(anchor)}"><span class="m">{method}</span> <code>{esc(path)}</code></h3>')
        out.append(f"<p><b>{esc(op.get('summary', ''))}</b></p>")
        out.append(para(op.get("description", "")))
        params = [resolve(doc, p) for p in list(shared_params) + list(op.get("parameters", []))]
        if params:
            out.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>meaning</th></tr>")
            for p in params:
                out.append(f"<tr><td><code>{esc(p.get('name'))}</code>{' *' if p.get('required') else ''}"
                           f"</td><td>{esc(p.get('in'))}</td><td>{ref_name(p.get('schema', {}))}</td>"
                           f"<td>{esc(p.get('description', ''))}</td></tr>")
            out.append("</table>")
        body = resolve(doc, op.get("requestBody"))
        if body:
            for ctype, media in body.get("content", {}).items():
                out.append(f"<p>Request body (<code>{esc(ctype)}</code>): "
                           f"{ref_name(media.get('schema', {}))}</p>")
        out.append("<table><tr><th>status</th><th>meaning</th><th>body</th></tr>")
        for status, resp in op.get("responses", {}).items():
            resp = resolve(doc, resp)
            bodies = ", ".join(ref_name(m.get("schema", {})) for m in resp.get("content", {}).values())
            out.append(f"<tr><td>{esc(status)}</td><td>{esc(resp.get('description', ''))}</td>"
                       f"<td>{bodies}</td></tr>")
        out.append("</table>")
    out.append("<h2>Schemas</h2>")
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        out.append(f'<h3 id="schema-{esc(name)}">{esc(name)}</h3>')
        out.append(para(schema.get("description", "")))
        props = schema.get("properties")
        if props:
            required = set(schema.get("required", []))
            out.append("<table><tr><th>field</th><th>type</th><th>meaning</th></tr>")
            for field, spec in props.items():
                out.append(f"<tr><td><code>{esc(field)}</code>{' *' if field in required else ''}</td>"
                           f"<td>{ref_name(spec)}</td><td>{esc(spec.get('description', '') if isinstance(spec, dict) else '')}"
                           f"</td></tr>")
            out.append("</table>")
        else:
            out.append(f"<pre>{esc(json.dumps(schema, indent=2, default=str))}</pre>")
    out.append("<p><small>Generated from docs/openapi.yaml by docs/tools/openapi_html.py.</small></p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) != 3:
        print("usage: openapi_html.py docs/openapi.yaml OUT.html", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    with open(argv[2], "w", encoding="utf-8") as f:
        f.write(render(doc))
    print(f"{argv[2]}: {len(doc.get('paths', {}))} paths")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
