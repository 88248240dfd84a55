"""Run the AWS SAM translator over SAM templates: the `sam validate` of a machine without the SAM CLI.

Usage: python3 internal/dev/samtranslate/translate.py template.yaml partner-stack.yaml

Each template is transformed into plain CloudFormation as `sam deploy` would; any error the
translator reports fails the run. A nested application whose Location is a local file is given
a placeholder S3 URL first: `sam package` uploads the child and writes that URL, and the
translator accepts nothing else. Local CodeUri values get a placeholder s3:// URI for the same
reason, as `sam validate` does. The child itself is translated as a template of its own.
"""

import os
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

PLACEHOLDER = "https://s3.amazonaws.com/placeholder-bucket/{}"
CODE_PLACEHOLDER = "s3://placeholder-bucket/code.zip"


def replace_local_code(props):
    if isinstance(props, dict) and isinstance(props.get("CodeUri"), str) and not props["CodeUri"].startswith("s3://"):
        props["CodeUri"] = CODE_PLACEHOLDER


class NoManagedPolicies:
    """A policy loader for offline use: every template here uses its own roles."""

    def load(self):
        return {}


def translate(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml_parse(f.read())
    replace_local_code((doc.get("Globals") or {}).get("Function"))
    for res in (doc.get("Resources") or {}).values():
        if res.get("Type") == "AWS::Serverless::Function":
            replace_local_code(res.get("Properties"))
        if res.get("Type") == "AWS::Serverless::Application":
            loc = (res.get("Properties") or {}).get("Location")
            if isinstance(loc, str) and "://" not in loc:
                res["Properties"]["Location"] = PLACEHOLDER.format(loc)
    return transform(doc, {}, NoManagedPolicies())


def main(paths):
    # The translator fills in pseudo parameters from a boto session; no call is made.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    failed = False
    for path in paths:
        try:
            out = translate(path)
        except InvalidDocumentException as e:
            failed = True
            for cause in e.causes:
                print(f"{path}: {cause.message}", file=sys.stderr)
            continue
        except Exception as e:  # the translator raises plain errors for some defects
            failed = True
            print(f"{path}: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        print(f"{path}: valid SAM template, {len(out['Resources'])} CloudFormation resources")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
