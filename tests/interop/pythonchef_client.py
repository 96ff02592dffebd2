#!/usr/bin/env python3
"""Drives a Chef server with pythonchef (third-party, signs with protocol 1.0), for the
interop tests. Each command prints one JSON document on stdout and exits 0, or prints the
failure on stderr and exits 1.

  snapshot URL KEY USER     every role, environment, data bag item and cookbook version
                            (manifest without URLs) plus the MD5 of every file's bytes
  crud URL KEY USER         create/read/update/delete a role, an environment, a data bag
                            and items; upload a cookbook the way knife does, read it back,
                            download every file, delete it
  validator URL KEY USER    what a validator may do: reads where Chef allows them, writes 403
  load URL KEY USER         create a sample of every replicated type
  mutate URL KEY USER       update, create and delete objects of every type in that sample
"""
import hashlib
import base64
import json
import sys

import requests
from chef import ChefAPI
from chef.exceptions import ChefServerError


def call(api, method, path, body=None, expect=(200, 201)):
    data = None if body is None else json.dumps(body)
    headers = {"content-type": "application/json", "accept": "application/json"}
    try:
        response = api.request(method, path, headers=headers, data=data)
    except ChefServerError as e:
        if e.code in expect:
            return e.code, None
        raise AssertionError(f"{method} {path}: {e.code} {e}") from e
    if response.status_code not in expect:
        raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
    text = response.text
    return response.status_code, (json.loads(text) if text.strip() else None)


def status_of(api, method, path, body=None):
    try:
        code, _ = call(api, method, path, body, expect=tuple(range(200, 300)))
        return code
    except AssertionError as e:
        return int(str(e).split(":")[1].split()[0])


def download(api, url):
    # Pre-signed (chef-sync-server) or unauthenticated (goiardi) file URLs: fetched as given.
    response = requests.get(url, timeout=30)
    if response.status_code != 200:
        raise AssertionError(f"GET {url}: {response.status_code}")
    return response.content


def snapshot(api):
    out = {}
    for name in sorted(call(api, "GET", "/roles")[1] or {}):
        out[f"/roles/{name}"] = call(api, "GET", f"/roles/{name}")[1]
    for name in sorted(call(api, "GET", "/environments")[1] or {}):
        if name != "_default":
            out[f"/environments/{name}"] = call(api, "GET", f"/environments/{name}")[1]
    for bag in sorted(call(api, "GET", "/data")[1] or {}):
        out[f"/data/{bag}"] = "bag"
        for item in sorted(call(api, "GET", f"/data/{bag}")[1] or {}):
            out[f"/data/{bag}/{item}"] = call(api, "GET", f"/data/{bag}/{item}")[1]
    cookbooks = call(api, "GET", "/cookbooks?num_versions=all")[1] or {}
    for name in sorted(cookbooks):
        for entry in cookbooks[name]["versions"]:
            path = f"/cookbooks/{name}/{entry['version']}"
            manifest = call(api, "GET", path)[1]
            files = {}
            for segment, value in manifest.items():
                if isinstance(value, list):
                    for f in value:
                        url = f.pop("url", None)
                        if url:
                            files[f["path"]] = hashlib.md5(download(api, url)).hexdigest()
            out[path] = normalize_manifest(manifest)
            out[path + "#files"] = files
    return out


def normalize_manifest(manifest):
    """Removes what differs between servers without changing the cookbook: empty segment
    lists (an all_files upload reads as all nine, goiardi lists only those with files) and
    metadata fields a server fills in empty (goiardi adds long_description; Chef Infra Server
    and ours always answer attributes, dependencies and long_description)."""
    out = {k: v for k, v in manifest.items() if v != []}
    out["metadata"] = {k: v for k, v in manifest.get("metadata", {}).items()
                       if v != "" and v != {}}
    return out


def upload_cookbook(api, name, version, files):
    sums = {hashlib.md5(body).hexdigest(): body for body in files.values()}
    _, sandbox = call(api, "POST", "/sandboxes", {"checksums": {k: None for k in sums}})
    for checksum, body in sums.items():
        entry = sandbox["checksums"][checksum]
        if entry.get("needs_upload"):
            md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
            response = requests.put(entry["url"], data=body, timeout=30,
                                    headers={"content-type": "application/x-binary", "content-md5": md5})
            if response.status_code not in (200, 201, 204):
                raise AssertionError(f"upload {checksum}: {response.status_code} {response.text}")
    call(api, "PUT", f"/sandboxes/{sandbox['sandbox_id']}", {"is_completed": True})
    segments = {}
    for path, body in files.items():
        segment = path.split("/", 1)[0] if "/" in path else "root_files"
        segments.setdefault(segment, []).append({
            "name": path.rsplit("/", 1)[-1], "path": path,
            "checksum": hashlib.md5(body).hexdigest(), "specificity": "default"})
    manifest = {"name": f"{name}-{version}", "cookbook_name": name, "version": version,
                "json_class": "Chef::CookbookVersion", "chef_type": "cookbook_version",
                "frozen?": False, "metadata": {"name": name, "version": version, "dependencies": {}}}
    manifest.update(segments)
    call(api, "PUT", f"/cookbooks/{name}/{version}", manifest)


def crud(api):
    done = []
    role = {"name": "pyrole", "json_class": "Chef::Role", "chef_type": "role", "description": "v1",
            "run_list": ["recipe[base]"], "default_attributes": {}, "override_attributes": {},
            "env_run_lists": {}}
    call(api, "POST", "/roles", role)
    assert call(api, "GET", "/roles/pyrole")[1]["description"] == "v1"
    role["description"] = "v2"
    call(api, "PUT", "/roles/pyrole", role)
    assert call(api, "GET", "/roles/pyrole")[1]["description"] == "v2"
    call(api, "DELETE", "/roles/pyrole")
    assert status_of(api, "GET", "/roles/pyrole") == 404
    done.append("role")

    env = {"name": "pyenv", "json_class": "Chef::Environment", "chef_type": "environment",
           "description": "", "cookbook_versions": {"base": ">= 1.0"},
           "default_attributes": {}, "override_attributes": {}}
    call(api, "POST", "/environments", env)
    env["description"] = "changed"
    call(api, "PUT", "/environments/pyenv", env)
    assert call(api, "GET", "/environments/pyenv")[1]["description"] == "changed"
    call(api, "DELETE", "/environments/pyenv")
    assert status_of(api, "GET", "/environments/pyenv") == 404
    done.append("environment")

    call(api, "POST", "/data", {"name": "pybag"})
    call(api, "POST", "/data/pybag", {"id": "one", "value": 1})
    call(api, "POST", "/data/pybag", {"id": "two", "value": 2})
    call(api, "PUT", "/data/pybag/one", {"id": "one", "value": 11})
    assert call(api, "GET", "/data/pybag/one")[1]["value"] == 11
    assert sorted(call(api, "GET", "/data/pybag")[1]) == ["one", "two"]
    call(api, "DELETE", "/data/pybag/two")
    call(api, "DELETE", "/data/pybag")
    assert status_of(api, "GET", "/data/pybag/one") == 404
    done.append("data bag")

    files = {"recipes/default.rb": b"package 'py'\n", "README.md": b"# py\n",
             "templates/default/py.erb": bytes(range(256)) * 40}
    upload_cookbook(api, "pycook", "1.2.3", files)
    manifest = call(api, "GET", "/cookbooks/pycook/1.2.3")[1]
    seen = {}
    for value in manifest.values():
        if isinstance(value, list):
            for f in value:
                seen[f["path"]] = download(api, f["url"])
    assert seen == files, f"downloaded files differ: {sorted(seen)}"
    call(api, "DELETE", "/cookbooks/pycook/1.2.3")
    assert status_of(api, "GET", "/cookbooks/pycook/1.2.3") == 404
    done.append("cookbook")
    return {"ok": done}


def load(api):
    """A sample of every replicated type, written the way a Chef user would."""
    call(api, "POST", "/roles", {"name": "web", "json_class": "Chef::Role", "chef_type": "role",
                                 "description": "front", "run_list": ["recipe[nginx]"],
                                 "default_attributes": {"port": 80}, "override_attributes": {},
                                 "env_run_lists": {"prod": ["recipe[nginx::prod]"]}})
    call(api, "POST", "/environments", {"name": "prod", "json_class": "Chef::Environment",
                                        "chef_type": "environment", "description": "production",
                                        "cookbook_versions": {"nginx": "= 1.0.0"},
                                        "default_attributes": {}, "override_attributes": {}})
    call(api, "POST", "/data", {"name": "users"})
    call(api, "POST", "/data/users", {"id": "ann", "shell": "/bin/zsh"})
    call(api, "POST", "/data/users", {"id": "bob", "groups": ["ops", "dev"]})
    upload_cookbook(api, "nginx", "1.0.0", {"recipes/default.rb": b"package 'nginx'\n",
                                             "templates/default/site.erb": b"server { listen 80; }\n",
                                             "README.md": b"# nginx from goiardi\n"})
    return {"ok": "loaded"}


def mutate(api):
    """Later changes: updates, creations and deletions of every type."""
    role = call(api, "GET", "/roles/web")[1]
    role["description"] = "front, changed"
    call(api, "PUT", "/roles/web", role)
    call(api, "POST", "/roles", {"name": "db", "json_class": "Chef::Role", "chef_type": "role",
                                 "description": "", "run_list": [], "default_attributes": {},
                                 "override_attributes": {}, "env_run_lists": {}})
    call(api, "DELETE", "/environments/prod")
    call(api, "PUT", "/data/users/ann", {"id": "ann", "shell": "/bin/bash"})
    call(api, "DELETE", "/data/users/bob")
    upload_cookbook(api, "nginx", "1.1.0", {"recipes/default.rb": b"package 'nginx'\nservice 'nginx'\n",
                                             "README.md": b"# nginx from goiardi\n"})
    call(api, "DELETE", "/cookbooks/nginx/1.0.0")
    return {"ok": "mutated"}


def validator(api):
    results = {
        "list clients": status_of(api, "GET", "/clients"),
        "create client": status_of(api, "POST", "/clients", {"name": "py-node"}),
        "read role": status_of(api, "GET", "/roles"),
        "create role": status_of(api, "POST", "/roles", {"name": "evil"}),
        "create data bag": status_of(api, "POST", "/data", {"name": "evil"}),
        "upload sandbox": status_of(api, "POST", "/sandboxes",
                                    {"checksums": {"d41d8cd98f00b204e9800998ecf8427e": None}}),
    }
    return results


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    command, url, key, user = sys.argv[1:]
    api = ChefAPI(url, key, user)
    try:
        commands = {"snapshot": snapshot, "crud": crud, "validator": validator,
                    "load": load, "mutate": mutate}
        result = commands[command](api)
    except (AssertionError, ChefServerError, requests.RequestException) as e:
        print(f"{command} failed: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
