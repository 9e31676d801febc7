"""Celery settings for deepdecipher's workers, read by ``dagster_celery.app`` when this folder is
on PYTHONPATH: ``PYTHONPATH=deploy/celery celery -A dagster_celery.app worker -Q dagster``."""

import os

broker_url = os.environ["DEEPDECIPHER_CELERY_BROKER"]
result_backend = os.environ.get("DEEPDECIPHER_CELERY_BACKEND") or broker_url
worker_prefetch_multiplier = 1  # a worker holds one step at a time: long steps do not queue up
