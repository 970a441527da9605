#!/usr/bin/python
"""Ansible adapter over nerdlab.sources.unshared_work: refuse to copy over work."""

from __future__ import annotations

DOCUMENTATION = r"""
module: nerdlab_guard
short_description: Refuse when checkouts hold work that a copy over them would lose
description:
  - Looks at each existing checkout in O(repos) for uncommitted changes, untracked
    files, stash entries and commits of the user's own, and fails naming them. A
    checkout that does not exist is skipped. Changes nothing.
options:
  repos: {type: list, elements: path, required: true}
"""

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={"repos": {"type": "list", "elements": "path", "required": True}},
        supports_check_mode=True,
    )
    from nerdlab.errors import NerdlabError
    from nerdlab.sources import unshared_work

    problems = []
    try:
        for repo in map(Path, module.params["repos"]):
            if (repo / ".git").exists():
                found = unshared_work(repo)
                if found:
                    problems.append(f"{repo} has {', '.join(found)}")
    except NerdlabError as err:
        module.fail_json(msg=str(err))
    if problems:
        module.fail_json(
            msg="; ".join(problems)
            + "; push or move that work away there first, nothing was copied"
        )
    module.exit_json(changed=False)


if __name__ == "__main__":
    main()
