"""Notification channels: email over SMTP, WeChat Work and DingTalk robots, one outbox."""
