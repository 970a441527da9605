#!/usr/bin/python
"""Ansible adapter over nerdlab.workspace.instrument: apply probe sets as one commit."""

from __future__ import annotations

DOCUMENTATION = r"""
module: nerdlab_instrument
short_description: Apply nerdlab probe sets to a checkout as one commit
options:
  repo: {type: path, required: true}
  probes: {type: list, elements: path, required: true}
  position: {type: int, default: 0, description: layers below instrumentation}
"""

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "repo": {"type": "path", "required": True},
            "probes": {"type": "list", "elements": "path", "required": True},
            "position": {"type": "int", "default": 0},
        }
    )
    from nerdlab.errors import NerdlabError
    from nerdlab.workspace import instrument

    try:
        result = instrument(
            Path(module.params["repo"]),
            [Path(p) for p in module.params["probes"]],
            module.params["position"],
        )
    except NerdlabError as err:
        module.fail_json(msg=str(err))
    module.exit_json(changed=result["changed"], applied=result["applied"])


if __name__ == "__main__":
    main()
