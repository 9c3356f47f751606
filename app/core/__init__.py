"""Shared kernel below every domain: domain errors and codes (`errors`), money in integer micro-units
(`money`), in-transaction hooks through which a lower domain causes work in a higher one (`hooks`).
"""
