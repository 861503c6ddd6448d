"""README.txt of a kit: the steps as a new admin follows them, with this site's values.

No secret is in it: it names the files that hold them.
"""

from __future__ import annotations

from typing import Sequence

from ivr.kit.render import Site

FILES = {
    "asterisk/extensions_ivr.conf": "the dialplan: [globals] and ivr's contexts",
    "asterisk/queues_ivr.conf": "the four queues, without members",
    "asterisk/manager_ivr.conf": "the AMI user for ivr",
    "asterisk/extensions_custom.conf": "ivr's contexts, to append to FreePBX's file",
    "asterisk/globals_custom.conf": "the dialplan's globals, to append to FreePBX's file",
    "asterisk/manager_custom.conf": "the AMI user, to append to FreePBX's file",
    "asterisk/queues_custom.conf": "the queues FreePBX's Queues module does not make",
    "systemd/ivr.service": "the unit (as shipped)",
    "systemd/ivr-backup.service": "a backup of the ledger (ivr ledger backup), as ivr's user",
    "systemd/ivr-backup.timer": "runs the backup daily",
    "systemd/ivr.env": "ivr's secrets for this PBX, as the unit reads them",
    "ivr.example.toml": "the commented config: start /etc/ivr/ivr.toml from it",
    "runbook.md": "what each alert means and what to do: publish it (--runbook-url)",
    "prometheus/prometheus.yml": "a scrape job for ivr and the rule files",
    "prometheus/rules/ivr-recording.yml": "service level, answer speed, abandon, payable",
    "prometheus/rules/ivr-alerts.yml": "alerts, each with its runbook",
    "prometheus/tests/ivr-recording.test.yml": "promtool tests of the rules",
    "prometheus/tests/ivr-alerts.test.yml": "promtool tests of the alerts",
    "grafana/dashboards/ivr.json": "the dashboard",
    "grafana/provisioning/datasources/ivr.yaml": "Grafana's Prometheus datasource",
    "grafana/provisioning/dashboards/ivr.yaml": "loads the dashboard",
}

HEAD = """\
ivr's deploy kit for PBX {pbx}
{rule}

Written by `ivr kit` from {source}.  Filled in:
  ivr's address (IVR_URL)   {url}
  Prometheus scrapes        {target}/metrics
  this PBX (IVR_PBX)        {pbx}
  queues                    first-line {first-line}, common {common}, engineers {engineers}, supervisors {supervisors}
  numbers                   hotline {hotline}, escalation {escalation}, supervisor {supervisor}, read-back {readback}
  AMI user                  {user}, logins from {permit}

Files (mode 0600 where marked secret: copy them as root and keep them so):
{listing}
"""

ASTERISK = """\
1. Asterisk (as root, on the PBX)
   install -d -m 0750 -o root -g asterisk /etc/asterisk/ivr
   install -m 0640 -o root -g asterisk asterisk/*.conf /etc/asterisk/ivr/
   Add to /etc/asterisk/extensions.conf:   #include "ivr/extensions_ivr.conf"
     Asterisk reads one [globals]: if extensions.conf has its own, move the IVR_*
     lines of extensions_ivr.conf's [globals] into it.
   Add to /etc/asterisk/queues.conf:       #include "ivr/queues_ivr.conf"
     and your agents, e.g.  [{first-line}](+)  then  member => PJSIP/op1,0,op1
   Add to /etc/asterisk/manager.conf:      #include "ivr/manager_ivr.conf"
     with, in its [general]:  enabled = yes  and  timestampevents = yes
   Point the endpoint that carries customer calls at context ivr-customers, and the
   operators' endpoints at ivr-agents.  Load func_curl, res_curl and func_uri.
   Then:
     asterisk -rx "manager reload"
     asterisk -rx "dialplan reload"
     asterisk -rx "module reload app_queue.so"
   Check: asterisk -rx "dialplan show {hotline}@ivr-customers"
          asterisk -rx "manager show user {user}"
          asterisk -rx "queue show {first-line}"
"""

FREEPBX = """\
1. FreePBX (as root, on the PBX).  FreePBX writes [globals], manager.conf and the
   queues of its Queues module itself: add to its *_custom files, never to those.
   cat asterisk/extensions_custom.conf >> /etc/asterisk/extensions_custom.conf
   cat asterisk/globals_custom.conf    >> /etc/asterisk/globals_custom.conf
   cat asterisk/manager_custom.conf    >> /etc/asterisk/manager_custom.conf
   cat asterisk/queues_custom.conf     >> /etc/asterisk/queues_custom.conf
     (a queue named by a number is left to the Queues module: its section stays
     commented out; give it the settings of the file's [ivr-queue] template there)
   chmod 0640 /etc/asterisk/globals_custom.conf /etc/asterisk/manager_custom.conf
     (they hold the secrets; keep them owned by asterisk, as FreePBX has them)
   In FreePBX's web interface:
   - a Custom Destination  ivr-customers,{hotline},1  and the support line's inbound
     route to it;
   - the numbers {escalation}, {supervisor} and {readback} as Custom Extensions, so FreePBX
     gives them to nobody else (extensions_custom.conf includes ivr-agents in
     [from-internal-custom]: operators on from-internal transfer callers to them);
   - manager.conf's [general] needs timestampevents = yes (FreePBX writes that file).
   Then:  fwconsole reload
   Check: asterisk -rx "dialplan show {hotline}@ivr-customers"
          asterisk -rx "manager show user {user}"
          asterisk -rx "manager show settings"      (Timestamp events: Yes)
          asterisk -rx "queue show {first-line}"
   Not verified (no FreePBX was at hand when this kit was written; all of the above
   comes from FreePBX's sources and documentation): how FreePBX's queues.conf includes
   queues_custom.conf; that a second [from-internal-custom] section merges with yours;
   where FreePBX lets you set timestampevents; the menu names of the web interface.
"""

REST = """\
2. Prompts:  ivr prompts --out /var/lib/asterisk/sounds/ivr   (needs espeak-ng and sox)

3. ivr (as root, on the host that runs it; the unit runs /opt/ivr/bin/ivr)
   python3 -m venv /opt/ivr
   /opt/ivr/bin/pip install ivr-*.whl            (the wheel you installed this ivr from)
   install -d /etc/ivr
   install -m 0644 ivr.example.toml /etc/ivr/ivr.toml
     or the config this kit was made from; it is world-readable: no secret in it
   install -m 0600 systemd/ivr.env /etc/ivr/ivr.env
     (several PBXs: one ivr.env holds every PBX's lines; add this kit's to it)
   Or keep the secrets as systemd credentials instead of ivr.env: root's 0600 files
   /etc/credstore/ivr.ami-secret, ivr.dialplan-secret, ivr.tokens (`ivr tokens new
   admin root --file /etc/credstore/ivr.tokens`), which the unit loads when they are
   there (ivr's README: Credentials); a line in ivr.env beats a credential.

4. systemd
   install -m 0644 systemd/ivr.service systemd/ivr-backup.service \\
       systemd/ivr-backup.timer /etc/systemd/system/
   systemctl daemon-reload
   systemctl enable --now ivr ivr-backup.timer
   curl -s {url}/readyz
     says "ready": true once ivr is logged in to AMI; journalctl -u ivr says why not

5. Prometheus (where it runs)
   cd prometheus && promtool check config prometheus.yml && promtool test rules tests/*.yml
   Copy rules/ beside your prometheus.yml and add its rule_files and the ivr job
   (job_name must stay "ivr": the alerts match it), then reload Prometheus.
   Each alert links to its section of {runbook} (runbook_url):
   publish runbook.md there, or write the kit again with --runbook-url.

6. Grafana
   provisioning/datasources/ivr.yaml -> /etc/grafana/provisioning/datasources/
   provisioning/dashboards/ivr.yaml  -> /etc/grafana/provisioning/dashboards/
   dashboards/ivr.json               -> /var/lib/grafana/dashboards/ivr/
   then restart Grafana.

Upgrading: write the kit again with the new ivr (`ivr kit --out DIR --force`), install
the files again and reload as in step 1, then `systemctl restart ivr`.
"""


def text(site: Site, listing: Sequence[tuple[str, bool]], freepbx: bool, source: str) -> str:
    width = max(len(path) for path, _ in listing)
    lines = "\n".join(f"  {path:<{width}}  {'(secret) ' if secret else ''}{FILES.get(path, '')}"
                      for path, secret in listing)
    values = {"pbx": site.pbx, "url": site.url, "runbook": site.runbook, "target": site.target, "user": site.ami_user, "permit": site.permit,
              "source": source, **site.queues, **site.numbers}
    head = HEAD.format(rule="=" * len(f"ivr's deploy kit for PBX {site.pbx}"), listing=lines,
                       **values)
    steps = (FREEPBX if freepbx else ASTERISK).format(**values)
    return "\n".join((head, "The steps\n", steps, REST.format(**values)))
