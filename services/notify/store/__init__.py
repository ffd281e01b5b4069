"""The notifier's durable state: tables, migrations and the plain functions that read and change them."""
