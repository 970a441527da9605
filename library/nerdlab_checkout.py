#!/usr/bin/python
"""Ansible adapter over nerdlab.workspace: check out one repository of the workspace."""

from __future__ import annotations

DOCUMENTATION = r"""
module: nerdlab_checkout
short_description: Check out nerdctl, containerd or fifo on nerdlab's branch
description:
  - nerdctl is checked out at O(ref); containerd and fifo at exactly O(version) of
    O(module), as nerdctl's go.mod requires. Uncommitted work is never touched.
options:
  name: {type: str, required: true, choices: [nerdctl, containerd, fifo]}
  workspace: {type: path, required: true}
  ref: {type: str, description: nerdctl ref (tag, branch, commit, pr:NUMBER)}
  module: {type: str, description: module path of a dependency}
  version: {type: str, description: module version of a dependency}
  source: {type: str, default: auto, choices: [auto, git, mirror, module]}
  mirrors: {type: str, default: ""}
"""

from dataclasses import asdict
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {
                "type": "str",
                "required": True,
                "choices": ["nerdctl", "containerd", "fifo"],
            },
            "workspace": {"type": "path", "required": True},
            "ref": {"type": "str"},
            "module": {"type": "str"},
            "version": {"type": "str"},
            "source": {
                "type": "str",
                "default": "auto",
                "choices": ["auto", "git", "mirror", "module"],
            },
            "mirrors": {"type": "str", "default": ""},
        },
        required_if=[
            ("name", "nerdctl", ["ref"]),
            ("name", "containerd", ["module", "version"]),
            ("name", "fifo", ["module", "version"]),
        ],
    )
    from nerdlab.errors import NerdlabError
    from nerdlab.workspace import (
        checkout_dependency,
        checkout_nerdctl,
        nerdctl_requirements,
    )

    params = module.params
    workspace = Path(params["workspace"])
    try:
        workspace.mkdir(parents=True, exist_ok=True)
        if params["name"] == "nerdctl":
            checkout = checkout_nerdctl(
                workspace, params["ref"], params["source"], params["mirrors"]
            )
            requires = nerdctl_requirements(Path(checkout.path))
        else:
            checkout = checkout_dependency(
                workspace,
                params["name"],
                params["module"],
                params["version"],
                params["source"],
                params["mirrors"],
            )
            requires = {}
    except NerdlabError as err:
        module.fail_json(msg=str(err))
    record = asdict(checkout)
    # sources.json records what the checkout is, not what this run did to it, so
    # that a second setup leaves it unchanged.
    del record["changed"]
    module.exit_json(changed=checkout.changed, checkout=record, requires=requires)


if __name__ == "__main__":
    main()
