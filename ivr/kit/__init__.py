"""The deploy kit: the files a PBX and its host need to run ivr, shipped in the package.

`files/` holds them as they ship: the dialplans (a valid default dialplan by themselves;
the lab loads them unchanged), the AMI user, the systemd unit, the example config, the
Prometheus rules with their tests and the Grafana dashboard.  `ivr kit --out DIR` writes
them for one PBX, filled in from ivr's config (render.py, freepbx.py), with a README of
the steps (readme.py), and never leaves a half-written folder (write.py).
"""
