#!/usr/bin/python
"""Ansible adapter over nerdlab.workspace.wire: point nerdctl at the local checkouts."""

from __future__ import annotations

DOCUMENTATION = r"""
module: nerdlab_wiring
short_description: Wire local containerd and fifo checkouts into nerdctl's build
description:
  - Commits a replace block in go.mod (O(mode=replace)) or a go.work file
    (O(mode=work)) as nerdlab's wiring layer on the nerdctl checkout.
options:
  nerdctl: {type: path, required: true}
  mode: {type: str, default: replace, choices: [replace, work]}
  dependencies: {type: dict, required: true, description: module path to relative dir}
"""

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "nerdctl": {"type": "path", "required": True},
            "mode": {
                "type": "str",
                "default": "replace",
                "choices": ["replace", "work"],
            },
            "dependencies": {"type": "dict", "required": True},
        }
    )
    from nerdlab.errors import NerdlabError
    from nerdlab.workspace import wire

    try:
        changed = wire(
            Path(module.params["nerdctl"]),
            module.params["mode"],
            {str(k): str(v) for k, v in module.params["dependencies"].items()},
        )
    except NerdlabError as err:
        module.fail_json(msg=str(err))
    module.exit_json(changed=changed)


if __name__ == "__main__":
    main()
