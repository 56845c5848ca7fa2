"""Scrapy spider of the quality harness: for every session, its own X-Forwarded-For address, the catalog JSON,
then a sample of products (JSON or HTML pages), with Scrapy's default settings and user agent."""

import json
import random

import scrapy


class CatalogSpider(scrapy.Spider):
    name = "catalog"
    custom_settings = {"ROBOTSTXT_OBEY": False, "LOG_ENABLED": True, "TELNETCONSOLE_ENABLED": False}

    def __init__(self, plan, **kwargs):
        super().__init__(**kwargs)
        self.plan = json.loads(plan)

    async def start(self):
        for s in self.plan["sessions"]:
            rnd = random.Random(s["seed"])
            meta = {"ip": s["ip"], "rnd": rnd}
            yield scrapy.Request(self.plan["base"] + "/collections/all/products.json", headers={"X-Forwarded-For": s["ip"]},
                                 meta=meta, callback=self.parse_catalog, dont_filter=True)

    def parse_catalog(self, response):
        rnd, ip = response.meta["rnd"], response.meta["ip"]
        products = json.loads(response.text)["products"]
        for p in rnd.sample(products, min(len(products), rnd.randint(2, 25))):
            suffix = rnd.choice([".json", ".json", ".js", ""])
            yield response.follow(f"/products/{p['handle']}{suffix}", headers={"X-Forwarded-For": ip},
                                  callback=self.parse_product, dont_filter=True)

    def parse_product(self, response):
        yield {"url": response.url, "status": response.status}
