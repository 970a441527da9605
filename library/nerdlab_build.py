#!/usr/bin/python
"""Ansible adapter over nerdlab.build: upstream's make, then proof of what was built."""

from __future__ import annotations

DOCUMENTATION = r"""
module: nerdlab_build
short_description: Build nerdctl with upstream's Makefile and prove the result
description:
  - Skips the build when the checkouts and Go are unchanged since the last one.
  - Fails unless C(go version -m) shows the local replacements and the binary carries
    every probe id in O(probe_ids).
options:
  nerdctl: {type: path, required: true}
  dependencies: {type: list, elements: path, required: true}
  replacements: {type: dict, required: true, description: module path to local dir}
  probe_ids: {type: list, elements: str, default: []}
  env: {type: dict, default: {}}
  proof_file: {type: path, required: true}
"""

import json
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "nerdctl": {"type": "path", "required": True},
            "dependencies": {"type": "list", "elements": "path", "required": True},
            "replacements": {"type": "dict", "required": True},
            "probe_ids": {"type": "list", "elements": "str", "default": []},
            "env": {"type": "dict", "default": {}},
            "proof_file": {"type": "path", "required": True},
        }
    )
    from nerdlab.build import build_nerdctl, proof_record, prove
    from nerdlab.errors import NerdlabError

    params = module.params
    env = {str(k): str(v) for k, v in params["env"].items()}
    nerdctl = Path(params["nerdctl"])
    try:
        built, seconds = build_nerdctl(
            nerdctl, [Path(p) for p in params["dependencies"]], env
        )
        proof = prove(
            nerdctl / "_output" / "nerdctl", params["replacements"], params["probe_ids"]
        )
    except NerdlabError as err:
        module.fail_json(msg=str(err))
    record = proof_record(proof)
    record["build_seconds"] = seconds
    Path(params["proof_file"]).write_text(json.dumps(record, indent=2) + "\n")
    if not proof.ok:
        module.fail_json(
            msg="the built nerdctl lacks probes "
            f"{', '.join(proof.probes_missing)}; run setup again",
            proof=record,
        )
    module.exit_json(changed=built, proof=record)


if __name__ == "__main__":
    main()
