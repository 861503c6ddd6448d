"""Webhooks: the desk's and the incidents' events, signed and sent to the ISP's helpdesk."""
