"""The legacy data catalog (catalog/): 1,162 items, their tables and code tables. No JVM, no Spark.

Each rule is a function that returns the defects it finds. A test asserts that the real catalog
has none. A second test shows the rule catches a planted defect, in a copy of the catalog
written to pytest's tmp_path.
"""

from __future__ import annotations

import csv
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from smartrehab.catalog import Catalog, load_catalog

CATALOG_DIR = Path(__file__).resolve().parents[2] / "catalog"
EXPECTED_ITEMS = 1162  # 戒毒管原有1162项数据
PERSON_TABLE, ADMISSION_TABLE = "ZJ_RYJBXX", "ZJ_RSDJ"
PERSON_REF, ADMISSION_REF = "ZJ_RYJBXX.RYBH", "ZJ_RSDJ.RSBH"
PER_UNITS = {"person", "admission", "centre_day", "centre_month", "assessment"}
SYSTEM_PREFIX = {
    "所政管理": "SZ", "教育矫正": "JY", "生活卫生": "SH", "生产劳动": "SC", "心理咨询": "XL",
    "诊断评估": "ZD", "运动康复": "YD", "戒毒医疗": "YL", "安全管理": "AQ", "社会延伸": "SY",
}
RANGE = re.compile(r"^range:(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$")
SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
RESERVED_SILVER = {"valid_from", "valid_to", "is_current"}
MIN_KEY_LENGTH = 15  # the generator writes 15-character record ids (table prefix + 9 digits)
# Core items that predate the range rule and must not change (ZJ_RSDJ.QJQX, the term in months).
RANGE_EXEMPT = {"SZ-0017"}

# The two core tables predate this catalog; ingestion and the generator depend on them as they are.
CORE_ITEMS = """\
SZ-0001,人员编号,person number,所政管理,ZJ_RYJBXX,RYBH,string,18,,,direct,person,person_pk,Y
SZ-0002,姓名,name,所政管理,ZJ_RYJBXX,XM,string,50,,,direct,person,name_pk,Y
SZ-0003,公民身份号码,citizen ID number,所政管理,ZJ_RYJBXX,SFZHM,id_number,18,GB 11643,,direct,person,id_number_pk,Y
SZ-0004,性别,sex,所政管理,ZJ_RYJBXX,XB,code,1,,sex,quasi,person,sex,Y
SZ-0005,民族,ethnicity,所政管理,ZJ_RYJBXX,MZ,code,2,,ethnicity,quasi,person,ethnicity,Y
SZ-0006,出生日期,date of birth,所政管理,ZJ_RYJBXX,CSRQ,date,8,,,quasi,person,birth_date,Y
SZ-0007,文化程度,education level,所政管理,ZJ_RYJBXX,WHCD,code,2,,education,quasi,person,education,Y
SZ-0008,户籍地区划,household registration region,所政管理,ZJ_RYJBXX,HJQH,code,6,,region,quasi,person,hukou_region,Y
SZ-0009,户籍地址,household registration address,所政管理,ZJ_RYJBXX,HJDZ,string,200,,,direct,person,address_pk,N
SZ-0010,联系电话,phone number,所政管理,ZJ_RYJBXX,LXDH,phone,20,,,direct,person,phone_pk,N
SZ-0011,主要滥用毒品,main drug of abuse,所政管理,ZJ_RYJBXX,DPZL,code,3,,drug_type,sensitive_health,person,main_drug,Y
SZ-0012,更新时间,record updated at,所政管理,ZJ_RYJBXX,GXSJ,datetime,19,,,none,person,source_updated_at,N
SZ-0013,入所编号,admission number,所政管理,ZJ_RSDJ,RSBH,string,20,,,none,admission,admission_id,Y
SZ-0014,人员编号,person number,所政管理,ZJ_RSDJ,RYBH,string,18,,,direct,admission,person_pk,Y
SZ-0015,戒毒所,centre,所政管理,ZJ_RSDJ,JSDM,code,4,,centre,none,admission,centre,Y
SZ-0016,入所日期,admission date,所政管理,ZJ_RSDJ,RSRQ,date,8,,,none,admission,admitted_on,Y
SZ-0017,强制隔离戒毒期限(月),order term in months,所政管理,ZJ_RSDJ,QJQX,integer,2,,,none,admission,term_months,Y
SZ-0018,当前分期分区,current zone,所政管理,ZJ_RSDJ,FQDM,code,2,,zone,none,admission,zone,Y
SZ-0019,人员状态,person status,所政管理,ZJ_RSDJ,RYZT,code,2,,person_status,none,admission,status,Y
SZ-0020,解除日期,release date,所政管理,ZJ_RSDJ,JCRQ,date,8,,,none,admission,released_on,Y
SZ-0021,解除类型,release type,所政管理,ZJ_RSDJ,JCLX,code,1,,release_type,none,admission,release_type,Y
SZ-0022,更新时间,record updated at,所政管理,ZJ_RSDJ,GXSJ,datetime,19,,,none,admission,source_updated_at,N
"""


# ---- helpers ------------------------------------------------------------------------------------
def raw_tables(root: Path) -> dict:
    """tables.yaml as written (the loader does not keep the generate: blocks)."""
    return yaml.safe_load((root / "tables.yaml").read_text(encoding="utf-8"))


def copy_catalog(tmp_path: Path) -> Path:
    dst = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, dst)
    return dst


def edit_items(root: Path, change: Callable[[list[dict]], None]) -> None:
    path = root / "items.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    change(rows)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def edit_tables(root: Path, change: Callable[[dict], None]) -> None:
    data = raw_tables(root)
    change(data)
    (root / "tables.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def row(rows: list[dict], table: str, column: str) -> dict:
    return next(r for r in rows if r["legacy_table"] == table and r["legacy_column"] == column)


# ---- rules: each returns the defects it finds -----------------------------------------------------
def item_code_defects(cat: Catalog) -> list[str]:
    out = [f"{code}: used {n} times" for code, n in Counter(i.item_code for i in cat.items).items() if n > 1]
    for it in cat.items:
        prefix = SYSTEM_PREFIX.get(it.legacy_system)
        if prefix is None:
            out.append(f"{it.item_code}: unknown legacy system {it.legacy_system}")
        elif not re.fullmatch(rf"{prefix}-\d{{4}}", it.item_code):
            out.append(f"{it.item_code}: should be {prefix}-NNNN for {it.legacy_system}")
    return out


def silver_target_defects(cat: Catalog) -> list[str]:
    out = []
    for it in cat.items:
        t = cat.tables.get(it.legacy_table)
        if t is None:
            out.append(f"{it.item_code}: table {it.legacy_table} is not in tables.yaml")
            continue
        if not it.silver_table or not it.silver_column:
            out.append(f"{it.item_code}: no silver target")
        elif it.silver_table != t.silver_table:
            out.append(f"{it.item_code}: silver table {it.silver_table}, its table says {t.silver_table}")
        elif not SNAKE.match(it.silver_column) or it.silver_column in RESERVED_SILVER:
            out.append(f"{it.item_code}: silver column {it.silver_column!r} is not a usable snake_case name")
        if it.legacy_system != t.system:
            out.append(f"{it.item_code}: system {it.legacy_system}, its table says {t.system}")
    owners = Counter(t.silver_table for t in cat.tables.values())
    out += [f"silver table {s} is the target of {n} legacy tables" for s, n in owners.items() if n > 1]
    for t in cat.tables.values():
        names = {i.silver_column for i in t.items}
        for it in t.items:
            if it.data_type == "code" and f"{it.silver_column}_label" in names:
                out.append(f"{t.name}: {it.silver_column}_label collides with the label column of {it.legacy_column}")
    return out


def code_table_defects(cat: Catalog) -> list[str]:
    out = []
    for it in cat.items:
        if it.data_type != "code":
            if it.code_table:
                out.append(f"{it.item_code}: code table on a {it.data_type} item")
            continue
        ct = cat.code_tables.get(it.code_table)
        if ct is None:
            out.append(f"{it.item_code}: code table {it.code_table!r} does not resolve")
            continue
        if not ct.labels:
            out.append(f"{it.item_code}: code table {it.code_table} has no codes")
        if not ct.standard:
            out.append(f"{it.item_code}: code table {it.code_table} names no standard")
        too_long = [c for c in ct.labels if len(c) > it.length]
        if too_long:
            out.append(f"{it.item_code}: codes {too_long} of {it.code_table} do not fit length {it.length}")
        if any(not zh or not en for zh, en in ct.labels.values()):
            out.append(f"{it.item_code}: code table {it.code_table} has a code without labels")
    return out


def version_and_generate_defects(cat: Catalog, raw: dict) -> list[str]:
    out = []
    for name, t in cat.tables.items():
        if not t.version_column or t.version_column not in t.columns:
            out.append(f"{name}: version column {t.version_column!r} is not an item")
        elif t.item(t.version_column).data_type != "datetime":
            out.append(f"{name}: version column {t.version_column} is not a datetime")
        gen = raw[name].get("generate")
        if not isinstance(gen, dict):
            out.append(f"{name}: no generate block")
            continue
        if gen.get("per") not in PER_UNITS:
            out.append(f"{name}: generate per {gen.get('per')!r} not in {sorted(PER_UNITS)}")
        rate = gen.get("rate")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
            out.append(f"{name}: generate rate {rate!r} is not a positive number")
        parent = gen.get("parent")
        if gen.get("per") == "assessment":
            if parent not in cat.tables:
                out.append(f"{name}: generate parent {parent!r} is not a table")
            elif raw[parent].get("generate", {}).get("per") == "assessment":
                out.append(f"{name}: parent {parent} is itself generated per assessment")
            elif not any(ref == f"{parent}.{k}" for ref in t.references.values() for k in cat.tables[parent].key):
                out.append(f"{name}: does not reference the key of its parent {parent}")
        elif parent is not None:
            out.append(f"{name}: parent {parent} given but per is {gen.get('per')}")
    return out


def person_link_defects(cat: Catalog) -> list[str]:
    out = []
    for name, t in cat.tables.items():
        if name != PERSON_TABLE and "RYBH" in t.columns and t.references.get("RYBH") != PERSON_REF:
            out.append(f"{name}: person-level table without RYBH -> {PERSON_REF}")
        if name != ADMISSION_TABLE and "RSBH" in t.columns and t.references.get("RSBH") != ADMISSION_REF:
            out.append(f"{name}: admission-level table without RSBH -> {ADMISSION_REF}")
    return out


def pseudonym_defects(cat: Catalog) -> list[str]:
    out = []
    for it in cat.items:
        if it.is_direct_identifier and not it.silver_column.endswith("_pk"):
            out.append(f"{it.item_code} {it.legacy_table}.{it.legacy_column}: direct identifier lands in clear "
                       f"as {it.silver_column}")
        if not it.is_direct_identifier and it.silver_column.endswith("_pk"):
            out.append(f"{it.item_code}: {it.silver_column} looks pseudonymised but pii_class is {it.pii_class}")
        if it.legacy_column == "RYBH" and (it.silver_column != "person_pk" or not it.is_direct_identifier):
            out.append(f"{it.item_code}: RYBH must be a direct identifier with silver column person_pk")
    return out


def reference_cycle(cat: Catalog) -> list[str]:
    """Tables left over when parents are loaded before children (ingestion needs a DAG)."""
    done: set[str] = set()
    pending = dict(cat.tables)
    while pending:
        ready = [n for n, t in pending.items() if {r.split(".")[0] for r in t.references.values()} <= done]
        if not ready:
            return sorted(pending)
        for n in ready:
            done.add(n)
            del pending[n]
    return []


def key_defects(cat: Catalog) -> list[str]:
    out = []
    for name, t in cat.tables.items():
        if name in (PERSON_TABLE, ADMISSION_TABLE):
            continue
        if len(t.key) != 1:
            out.append(f"{name}: key {t.key} is not a single record id")
            continue
        k = t.key[0]
        if k in t.references:
            out.append(f"{name}: key {k} is a reference column")
        if k not in t.columns:
            continue  # reported by problems()
        it = t.item(k)
        if it.data_type != "string" or it.length < MIN_KEY_LENGTH:
            out.append(f"{name}: key {k} is {it.data_type}({it.length}), want string of >= {MIN_KEY_LENGTH}")
    return out


def format_defects(cat: Catalog) -> list[str]:
    out = []
    for it in cat.items:
        if it.data_type in ("integer", "decimal") and it.item_code not in RANGE_EXEMPT:
            m = RANGE.match(it.format)
            if not m:
                out.append(f"{it.item_code}: {it.data_type} format {it.format!r} is not range:<low>-<high>")
            elif float(m.group(1)) >= float(m.group(2)):
                out.append(f"{it.item_code}: empty range {it.format}")
        elif it.data_type in ("date", "datetime") and it.format:
            out.append(f"{it.item_code}: {it.data_type} with format {it.format!r}")
        if not re.fullmatch(r"[A-Z][A-Z0-9]*", it.legacy_column):
            out.append(f"{it.item_code}: legacy column {it.legacy_column!r} is not upper-case")
        if not it.name_zh or not it.name_en:
            out.append(f"{it.item_code}: missing name")
        if it.pii_class not in {"direct", "quasi", "sensitive_health", "none"}:
            out.append(f"{it.item_code}: pii_class {it.pii_class!r}")
    return out


# ---- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CATALOG_DIR)


@pytest.fixture(scope="module")
def raw() -> dict:
    return raw_tables(CATALOG_DIR)


# ---- the real catalog -----------------------------------------------------------------------------
def test_exactly_1162_items(catalog):
    assert len(catalog.items) == EXPECTED_ITEMS
    assert sum(len(t.items) for t in catalog.tables.values()) == EXPECTED_ITEMS  # none orphaned


def test_item_codes_unique_and_prefixed_by_system(catalog):
    assert item_code_defects(catalog) == []


def test_problems_is_empty(catalog):
    assert catalog.problems() == []


def test_core_items_unchanged():
    lines = (CATALOG_DIR / "items.csv").read_text(encoding="utf-8").splitlines()
    assert "\n".join(lines[1:23]) + "\n" == CORE_ITEMS


def test_every_item_mapped_to_a_silver_target(catalog):
    assert silver_target_defects(catalog) == []


def test_every_code_table_reference_resolves(catalog):
    assert code_table_defects(catalog) == []
    indexed = set(yaml.safe_load((CATALOG_DIR / "code_tables.yaml").read_text(encoding="utf-8")))
    files = {p.stem for p in (CATALOG_DIR / "code_tables").glob("*.csv")}
    assert indexed == files, "code_tables.yaml and code_tables/*.csv disagree"


def test_every_table_has_version_column_and_generate_block(catalog, raw):
    assert version_and_generate_defects(catalog, raw) == []


def test_person_level_tables_reference_the_person_master(catalog):
    assert person_link_defects(catalog) == []
    person_level = [t for n, t in catalog.tables.items() if "RYBH" in t.columns and n != PERSON_TABLE]
    assert len(person_level) >= 50


def test_direct_identifiers_only_as_pseudonyms(catalog):
    assert pseudonym_defects(catalog) == []


def test_references_form_a_dag(catalog):
    assert reference_cycle(catalog) == []


def test_keys_are_single_record_ids(catalog):
    assert key_defects(catalog) == []


def test_formats_and_names(catalog):
    assert format_defects(catalog) == []


def test_table_inventory(catalog):
    systems = {t.system for t in catalog.tables.values()}
    assert systems == set(SYSTEM_PREFIX)
    assert 45 <= len(catalog.tables) <= 70
    fixed = [n for n, t in catalog.tables.items() if t.file_format == "fixed_width"]
    assert 2 <= len(fixed) <= 4, fixed
    assert {t.encoding for t in catalog.tables.values()} <= {"gb18030", "gbk"}
    for t in catalog.tables.values():
        assert t.grain.startswith("one row per"), t.name
        assert t.owner and t.name_zh and t.name_en, t.name


# ---- domain content -------------------------------------------------------------------------------
def silver_columns(catalog: Catalog, table: str) -> dict[str, object]:
    return {i.silver_column: i for i in catalog.table(table).items}


def test_scl90_has_nine_factors_total_and_positive_items(catalog):
    cols = silver_columns(catalog, "XL_SCL90")
    factors = ["somatization", "obsessive_compulsive", "interpersonal_sensitivity", "depression", "anxiety",
               "hostility", "phobic_anxiety", "paranoid_ideation", "psychoticism"]
    for f in factors:
        assert cols[f].data_type == "decimal" and cols[f].format == "range:1-5", f
        assert cols[f].pii_class == "sensitive_health"
    assert cols["total_score"].format == "range:90-450"
    assert cols["positive_items"].format == "range:0-90"


def test_detox_assessment_has_five_items_scored_0_or_20(catalog):
    items = [i for i in catalog.table("ZD_SLTD").items if re.fullmatch(r"item[1-5]_\w+", i.silver_column)]
    assert len(items) == 5
    assert all(i.data_type == "integer" and i.format == "range:0-20" for i in items)
    recovery = [i for i in catalog.table("ZD_SXKF").items if re.fullmatch(r"item[1-5]_\w+", i.silver_column)]
    assert len(recovery) == 5


def test_assessment_results_use_the_national_result_types(catalog):
    t = catalog.table("ZD_PGJL")
    results = {t.item(c).code_table for c in ("SLTDJG", "SXKFJG", "XWBXJG")}
    assert results == {"assessment_result"}
    assert t.item("SHHJJG").code_table == "social_result"
    assert {lz for lz, _ in catalog.code_tables["assessment_result"].labels.values()} == {"合格", "不合格"}
    assert {lz for lz, _ in catalog.code_tables["social_result"].labels.values()} == {"良好", "一般"}
    outcome = {lz for lz, _ in catalog.code_tables["assessment_outcome"].labels.values()}
    assert {"按期解除", "提出提前解除意见", "提出延长期限意见", "建议责令社区康复"} <= outcome


def test_incident_types_cover_the_six_nos(catalog):
    labels = {lz for lz, _ in catalog.code_tables["incident_type"].labels.values()}
    assert {"毒品流入", "脱逃", "非正常死亡", "所内刑事案件", "生产安全事故", "重大疫情"} <= labels


def test_behaviour_ledger_codes(catalog):
    events = {lz for lz, _ in catalog.code_tables["score_event_type"].labels.values()}
    dims = {lz for lz, _ in catalog.code_tables["score_dimension"].labels.values()}
    assert events == {"扣分", "奖分", "罚分", "突出表现", "严重违纪"}
    assert dims == {"遵规守纪", "戒毒康复", "教育矫治", "康复劳动", "坦白检举"}


def test_infectious_screening_covers_hiv_hcv_syphilis_tb(catalog):
    cols = silver_columns(catalog, "YL_CRBS")
    for c in ("hiv_screen", "hcv_antibody", "syphilis_trust", "tb_result"):
        assert cols[c].code_table == "infectious_test_result" and cols[c].pii_class == "sensitive_health"


def test_followup_milestones_at_one_two_three_years(catalog):
    assert {"12", "24", "36"} <= set(catalog.code_tables["followup_milestone"].labels)
    assert {"操守保持", "复吸", "失联", "死亡"} <= {lz for lz, _ in catalog.code_tables["followup_result"].labels.values()}


def test_marital_status_follows_gb_t_2261_2(catalog):
    ct = catalog.code_tables["marital_status"]
    assert ct.standard.startswith("GB/T 2261.2")
    assert {"10": "未婚", "20": "已婚", "30": "丧偶", "40": "离婚"}.items() <= {c: z for c, (z, _) in ct.labels.items()}.items()


# ---- each rule catches a planted defect -----------------------------------------------------------
def test_problems_reports_a_duplicated_item_code(tmp_path):
    root = copy_catalog(tmp_path)
    edit_items(root, lambda rows: row(rows, "XL_SCL90", "YY").update(item_code=row(rows, "XL_SCL90", "JL")["item_code"]))
    cat = load_catalog(root)
    assert any("duplicate item code" in p for p in cat.problems())
    assert item_code_defects(cat)


def test_problems_reports_an_unknown_code_table(tmp_path):
    root = copy_catalog(tmp_path)
    (root / "code_tables" / "followup_result.csv").unlink()
    cat = load_catalog(root)
    assert any("followup_result" in p for p in cat.problems())
    assert any("followup_result" in d for d in code_table_defects(cat))


def test_rule_catches_codes_longer_than_the_item(tmp_path):
    root = copy_catalog(tmp_path)
    edit_items(root, lambda rows: row(rows, "ZJ_RYBCXX", "GJ").update(length="2"))  # country codes are 3 long
    assert any("do not fit" in d for d in code_table_defects(load_catalog(root)))


def test_rule_catches_an_item_without_silver_target(tmp_path):
    root = copy_catalog(tmp_path)
    edit_items(root, lambda rows: row(rows, "AQ_BHYS", "YSSC").update(silver_table="restraint"))
    assert any("its table says protective_restraint" in d for d in silver_target_defects(load_catalog(root)))


def test_rule_catches_a_label_column_collision(tmp_path):
    root = copy_catalog(tmp_path)
    edit_items(root, lambda rows: row(rows, "SY_HFJL", "BZ").update(silver_column="result_label"))
    assert any("collides" in d for d in silver_target_defects(load_catalog(root)))


def test_rule_catches_a_missing_generate_block_and_bad_parent(tmp_path):
    root = copy_catalog(tmp_path)

    def change(data):
        del data["JY_KSCJ"]["generate"]
        data["ZD_SLTD"]["generate"]["parent"] = "ZD_NOPE"
        data["YL_NJJL"]["generate"]["per"] = "week"

    edit_tables(root, change)
    defects = version_and_generate_defects(load_catalog(root), raw_tables(root))
    assert any(d.startswith("JY_KSCJ: no generate") for d in defects)
    assert any(d.startswith("ZD_SLTD: generate parent") for d in defects)
    assert any(d.startswith("YL_NJJL: generate per") for d in defects)


def test_rule_catches_a_version_column_that_is_not_a_datetime(tmp_path):
    root = copy_catalog(tmp_path)
    edit_items(root, lambda rows: row(rows, "SC_LDBC", "GXSJ").update(data_type="date", length="8"))
    assert any("SC_LDBC: version column" in d for d in version_and_generate_defects(load_catalog(root), raw_tables(root)))


def test_rule_catches_a_person_table_without_person_reference(tmp_path):
    root = copy_catalog(tmp_path)
    edit_tables(root, lambda data: data["XL_ZXJL"]["references"].pop("RYBH"))
    assert person_link_defects(load_catalog(root)) == [f"XL_ZXJL: person-level table without RYBH -> {PERSON_REF}"]


def test_rule_catches_a_direct_identifier_in_clear(tmp_path):
    root = copy_catalog(tmp_path)
    edit_items(root, lambda rows: row(rows, "ZJ_TSDJ", "TSRSFZ").update(silver_column="visitor_id_number"))
    cat = load_catalog(root)
    assert cat.problems() == []  # the loader itself does not check this
    assert any("TSRSFZ" in d for d in pseudonym_defects(cat))


def test_rule_catches_a_reference_cycle_and_a_bad_key(tmp_path):
    root = copy_catalog(tmp_path)

    def change(data):
        data["ZD_PGJL"]["references"]["SCBH"] = "ZD_PGSC.SCBH"
        data["ZD_PGSC"]["references"]["SCBH"] = "ZD_PGJL.SCBH"
        data["YL_MZJL"]["key"] = ["RYBH"]

    edit_tables(root, change)
    cat = load_catalog(root)
    assert {"ZD_PGJL", "ZD_PGSC"} <= set(reference_cycle(cat))
    assert any(d.startswith("YL_MZJL: key RYBH") for d in key_defects(cat))


def test_rule_catches_an_unparseable_range(tmp_path):
    root = copy_catalog(tmp_path)
    edit_items(root, lambda rows: row(rows, "YD_TZCS", "WL").update(format="range:-5-100"))
    assert any("range:<low>-<high>" in d for d in format_defects(load_catalog(root)))


# ---- row rules (catalog/row_rules.yaml): field limits and cross-field rules --------------------------------
def test_row_rules_are_loaded_and_sound(catalog):
    rr = catalog.row_rules
    assert rr.max_record_lines >= 2 and set(rr.text_types) == {"string", "phone"}
    assert rr.range_of("ZJ_TSDJ", "SC") == (0.0, 1440.0)
    visit = {r.code for r in rr.rules_of("ZJ_TSDJ")}
    assert {"not_before:JSSJ", "duration:SC"} <= visit
    assert "not_before:JCRQ" in {r.code for r in rr.rules_of("ZJ_RSDJ")}
    assert "age:CSRQ" in {r.code for r in rr.rules_of("ZJ_RYJBXX")}


def test_every_table_with_a_start_and_end_has_a_cross_field_rule(catalog):
    """A table holding a start and an end of the same kind (开始/结束, 起始/截止, 入/出) names them in a rule."""
    pairs = {"KSSJ": "JSSJ", "KSRQ": "JSRQ", "JBKSSJ": "JBJSSJ", "ZXQSRQ": "ZXJZRQ", "QJQSRQ": "QJJZRQ",
             "RSRQ": "JCRQ", "JRRQ": "LKRQ", "RYRQ": "CYRQ"}
    missing = []
    for t in catalog.tables.values():
        named = {(r.params.get("than"), r.params.get("column")) for r in catalog.row_rules.rules_of(t.name)}
        for start, end in pairs.items():
            if start in t.columns and end in t.columns and (start, end) not in named:
                missing.append(f"{t.name}: {start} -> {end}")
    assert missing == []


@pytest.mark.parametrize("planted, expected", [
    ("cross_field:\n  ZJ_TSDJ:\n    - {rule: not_before, column: NOPE, than: KSSJ}\n", "no column NOPE"),
    ("cross_field:\n  ZJ_TSDJ:\n    - {rule: sometime, column: JSSJ, than: KSSJ}\n", "rule not in"),
    ("cross_field:\n  ZJ_TSDJ:\n    - {rule: not_before, column: SC, than: KSSJ}\n", "must be dates"),
    ("field_limits:\n  ranges:\n    ZJ_TSDJ.TSRXM: [0, 5]\n", "not an integer or decimal item"),
    ("field_limits:\n  ranges:\n    ZJ_TSDJ.SC: [9, 5]\n", "above max"),
])
def test_row_rule_defects_are_reported(tmp_path, planted, expected):
    root = copy_catalog(tmp_path)
    (root / "row_rules.yaml").write_text(planted, encoding="utf-8")
    assert any(expected in p for p in load_catalog(root).problems()), load_catalog(root).problems()
