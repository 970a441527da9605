#!/usr/bin/python
"""Ansible adapter over nerdlab.scenarios: render a scenario into a runner plan."""

from __future__ import annotations

DOCUMENTATION = r"""
module: nerdlab_scenario
short_description: Render a nerdlab scenario file into the runner's JSON plan
options:
  scenario: {type: path, required: true}
  plan: {type: path, required: true}
  context: {type: dict, required: true}
"""

import json
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "scenario": {"type": "path", "required": True},
            "plan": {"type": "path", "required": True},
            "context": {"type": "dict", "required": True},
        }
    )
    from nerdlab.errors import NerdlabError
    from nerdlab.scenarios import load_scenario, render_plan

    try:
        scenario = load_scenario(Path(module.params["scenario"]))
        plan = render_plan(
            scenario, {str(k): str(v) for k, v in module.params["context"].items()}
        )
    except NerdlabError as err:
        module.fail_json(msg=str(err))
    path = Path(module.params["plan"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=2) + "\n")
    module.exit_json(changed=True, plan=str(path))


if __name__ == "__main__":
    main()
