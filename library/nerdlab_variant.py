#!/usr/bin/python
"""Ansible adapter over nerdlab.workspace.prepare_variant: nerdctl plus one fix."""

from __future__ import annotations

DOCUMENTATION = r"""
module: nerdlab_variant
short_description: Check out nerdctl with one candidate fix beside the plain checkout
description:
  - A git worktree of the nerdctl checkout, with the same wiring and
    instrumentation and the fix as one more commit, so both builds are kept.
options:
  nerdctl: {type: path, required: true}
  fix: {type: path, required: true, description: a patches/fixes/*.yml file}
  probes: {type: list, elements: path, required: true}
  mode: {type: str, default: replace, choices: [replace, work]}
  dependencies: {type: dict, required: true}
"""

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "nerdctl": {"type": "path", "required": True},
            "fix": {"type": "path", "required": True},
            "probes": {"type": "list", "elements": "path", "required": True},
            "mode": {
                "type": "str",
                "default": "replace",
                "choices": ["replace", "work"],
            },
            "dependencies": {"type": "dict", "required": True},
        }
    )
    from nerdlab.errors import NerdlabError
    from nerdlab.workspace import prepare_variant

    params = module.params
    try:
        result = prepare_variant(
            Path(params["nerdctl"]),
            Path(params["fix"]),
            [Path(p) for p in params["probes"]],
            params["mode"],
            {str(k): str(v) for k, v in params["dependencies"].items()},
        )
    except NerdlabError as err:
        module.fail_json(msg=str(err))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
