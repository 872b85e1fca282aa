"""The README and docs/: length, links that resolve, no history of the writing."""
import glob
import os.path as osp
import re

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAGES = ['README.md'] + sorted(
    osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'docs', '*.md')))

# Phrases that tell how or when the text was written rather than what the
# code does; a measurement names its machine, versions and date instead.
HISTORY = ('first release', 'this release', 'last release', 'busy machine',
           'load average', 'previous session', 'in this session',
           'could not be run', 'no gpu was available', 'commit 75a6bd4')


def read(page: str) -> str:
    with open(osp.join(ROOT, page), encoding='utf-8') as f:
        return f.read()


def slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    heading = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return heading.replace(' ', '-')


def anchors(page: str) -> set:
    found, in_code = set(), False
    for line in read(page).splitlines():
        if line.startswith('```'):
            in_code = not in_code
        elif not in_code and line.startswith('#'):
            found.add(slug(line.lstrip('#')))
    return found


def test_readme_is_short():
    assert len(read('README.md').splitlines()) <= 250


@pytest.mark.parametrize('page', PAGES)
def test_relative_links_resolve(page):
    missing = []
    for target in re.findall(r'\]\(([^)\s]+)\)', read(page)):
        if re.match(r'[a-z]+:', target):
            continue  # http(s), mailto
        path, _, anchor = target.partition('#')
        file = osp.normpath(osp.join(osp.dirname(page), path)) if path \
            else page
        if not osp.exists(osp.join(ROOT, file)):
            missing.append(target)
        elif anchor and file.endswith('.md') and anchor not in anchors(file):
            missing.append(target)
    assert not missing, f'{page} links to what does not exist: {missing}'


@pytest.mark.parametrize('page', PAGES)
def test_no_history_of_the_writing(page):
    text = read(page).lower()
    assert not [p for p in HISTORY if p in text], page


def test_readme_says_how_to_use_the_environment():
    """The tool commands of the README run as written after `make demo`."""
    readme = read('README.md')
    commands = readme.split('## Two commands', 1)[1]
    assert 'source .venv/bin/activate' in commands.split('```', 2)[2][:300]
