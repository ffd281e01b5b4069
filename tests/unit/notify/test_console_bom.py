"""Bills of materials from CSV and XLSX: every row checked, errors that name the row, nothing half-read."""

from __future__ import annotations

import io

from openpyxl import Workbook

from services.notify.console.bom import parse_bom


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_csv_rows_become_products_grouped_by_name_in_file_order():
    upload = parse_bom(
        "bom.csv",
        b"\xef\xbb\xbfProduct;Component;Material;Share;Origin_Country;Quantity;Unit\n"
        b"Radar;GaN amp;Gallium;0,02;cn;1,5;kg\n"
        b"Sonar;Lens;germanium;;;;\n"
        b"Radar;Window;germanium;0.05;CN;;\n",
    )
    assert upload.errors == []
    assert [p.name for p in upload.products] == ["Radar", "Sonar"]
    radar = upload.products[0].bom
    assert [(x.component, x.material, x.share, x.origin_country, x.quantity, x.unit) for x in radar] == [
        ("GaN amp", "gallium", 0.02, "CN", 1.5, "kg"),
        ("Window", "germanium", 0.05, "CN", None, ""),
    ]


def test_xlsx_is_read_like_csv():
    upload = parse_bom(
        "bom.xlsx",
        _xlsx(
            [
                ["product", "component", "material", "share"],
                ["Radar", "GaN amp", "gallium", 0.02],
                [None, None, None, None],
            ]
        ),
    )
    assert upload.errors == []
    [product] = upload.products
    assert (product.name, product.bom[0].material, product.bom[0].share) == ("Radar", "gallium", 0.02)


def test_every_bad_row_is_named_and_no_product_survives():
    upload = parse_bom(
        "bom.csv",
        b"product,component,material,share,origin_country\n"
        b"Radar,GaN amp,gallium,0.02,CN\n"
        b"Radar,Window,galium,0.05,CN\n"
        b",Lens,germanium,two,ZZ\n"
        b"Radar,Fan,gallium,1.5,\n",
    )
    assert upload.products == []
    assert [(e.row, e.message) for e in upload.errors] == [
        (3, "material: unknown material 'galium'"),
        (4, "product: required; share: not a number ('two'); origin_country: unknown country 'ZZ'"),
        (5, "share: Input should be less than or equal to 1"),
    ]


def test_files_that_are_not_a_bom_say_why():
    assert parse_bom("bom.csv", b"").errors[0].message == "the file is empty"
    assert "missing column(s) material" in parse_bom("bom.csv", b"product,component\nA,b\n").errors[0].message
    assert "unknown column(s) colour" in parse_bom("bom.csv", b"product,component,material,colour\n").errors[0].message
    assert parse_bom("bom.xlsx", b"PK\x03\x04 not a workbook").errors[0].message.startswith("not a readable XLSX")
    assert parse_bom("bom.csv", b"\xff\xfe\x00bad").errors[0].message == "a CSV file must be UTF-8 text"
