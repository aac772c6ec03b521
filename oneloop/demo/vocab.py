"""Bilingual word lists the demo generator draws from.

Kept apart from the logic so that a reviewer can read (and correct) the Chinese and English
vocabulary in one place. Everything here is fictional: company names, stores, campaigns and
domains are invented for the Galaxy Group (星河集团) demo. Weights are rough, chosen so that
common surnames and big cities dominate as they do in real customer lists.
"""

# ruff: noqa: E501 - data tables read best one record per line, user agents cannot be cut

from __future__ import annotations

from dataclasses import dataclass

# --- people -------------------------------------------------------------------------------

# (surname, pinyin, relative frequency)
SURNAMES: tuple[tuple[str, str, float], ...] = (
    ("王", "wang", 7.1), ("李", "li", 7.0), ("张", "zhang", 6.9), ("刘", "liu", 5.4),
    ("陈", "chen", 4.5), ("杨", "yang", 3.1), ("黄", "huang", 2.2), ("赵", "zhao", 2.1),
    ("吴", "wu", 2.0), ("周", "zhou", 1.9), ("徐", "xu", 1.3), ("孙", "sun", 1.3),
    ("马", "ma", 1.2), ("朱", "zhu", 1.2), ("胡", "hu", 1.1), ("郭", "guo", 1.1),
    ("何", "he", 1.0), ("高", "gao", 1.0), ("林", "lin", 1.0), ("罗", "luo", 0.9),
    ("郑", "zheng", 0.9), ("梁", "liang", 0.8), ("谢", "xie", 0.8), ("宋", "song", 0.7),
    ("唐", "tang", 0.7), ("许", "xu", 0.7), ("韩", "han", 0.6), ("冯", "feng", 0.6),
    ("邓", "deng", 0.6), ("曹", "cao", 0.6), ("彭", "peng", 0.6), ("曾", "zeng", 0.5),
    ("肖", "xiao", 0.5), ("田", "tian", 0.5), ("董", "dong", 0.5), ("袁", "yuan", 0.5),
    ("潘", "pan", 0.4), ("蒋", "jiang", 0.4), ("蔡", "cai", 0.4), ("余", "yu", 0.4),
    ("杜", "du", 0.4), ("叶", "ye", 0.4), ("程", "cheng", 0.4), ("苏", "su", 0.4),
    ("魏", "wei", 0.4), ("吕", "lv", 0.3), ("丁", "ding", 0.3), ("沈", "shen", 0.3),
    ("欧阳", "ouyang", 0.05), ("司马", "sima", 0.02),
)  # fmt: skip

GIVEN_MALE: tuple[str, ...] = (
    "伟", "强", "磊", "军", "洋", "勇", "杰", "涛", "明", "超", "刚", "建华", "建国", "志强",
    "浩", "宇", "浩然", "思远", "鑫", "鹏", "辉", "俊", "飞", "斌", "博", "晨阳", "东", "凯",
    "子轩", "泽宇", "睿", "峰", "亮", "健", "文博", "海",
)  # fmt: skip
GIVEN_FEMALE: tuple[str, ...] = (
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "秀英", "霞", "平", "桂英", "婷", "欣怡", "子涵",
    "梓涵", "一诺", "雨桐", "海燕", "丹", "玲", "颖", "琳", "雪", "慧", "佳琪", "嘉怡", "悦",
    "萱", "瑶", "倩", "红梅", "秀兰", "晓燕",
)  # fmt: skip

PINYIN: dict[str, str] = {
    "伟": "wei", "芳": "fang", "娜": "na", "敏": "min", "静": "jing", "丽": "li", "强": "qiang",
    "磊": "lei", "军": "jun", "洋": "yang", "勇": "yong", "艳": "yan", "杰": "jie", "娟": "juan",
    "涛": "tao", "明": "ming", "超": "chao", "秀": "xiu", "英": "ying", "霞": "xia", "平": "ping",
    "刚": "gang", "桂": "gui", "建": "jian", "华": "hua", "国": "guo", "志": "zhi", "文": "wen",
    "婷": "ting", "浩": "hao", "宇": "yu", "欣": "xin", "怡": "yi", "子": "zi", "涵": "han",
    "梓": "zi", "一": "yi", "诺": "nuo", "然": "ran", "雨": "yu", "桐": "tong", "思": "si",
    "远": "yuan", "晓": "xiao", "海": "hai", "燕": "yan", "丹": "dan", "鑫": "xin", "鹏": "peng",
    "辉": "hui", "玲": "ling", "颖": "ying", "琳": "lin", "雪": "xue", "慧": "hui", "俊": "jun",
    "飞": "fei", "斌": "bin", "博": "bo", "佳": "jia", "嘉": "jia", "晨": "chen", "阳": "yang",
    "东": "dong", "凯": "kai", "琪": "qi", "悦": "yue", "轩": "xuan", "萱": "xuan", "泽": "ze",
    "睿": "rui", "瑶": "yao", "倩": "qian", "峰": "feng", "亮": "liang", "健": "jian",
    "红": "hong", "梅": "mei", "兰": "lan",
}  # fmt: skip

# A wrong character that sounds alike: what a sales rep types into the CRM from a phone call.
TYPO_CHARS: dict[str, str] = {
    "伟": "玮", "芳": "方", "敏": "民", "静": "晶", "丽": "莉", "强": "蔷", "磊": "垒", "军": "君",
    "洋": "阳", "勇": "永", "艳": "燕", "杰": "洁", "娟": "绢", "涛": "韬", "明": "铭", "超": "潮",
    "霞": "侠", "平": "萍", "刚": "钢", "华": "桦", "文": "雯", "婷": "亭", "浩": "皓", "宇": "羽",
    "欣": "昕", "涵": "函", "桐": "彤", "远": "源", "燕": "艳", "鹏": "朋", "辉": "晖", "玲": "铃",
    "颖": "莹", "琳": "林", "慧": "惠", "俊": "骏", "斌": "彬", "博": "波", "英": "莹", "建": "健",
    "志": "智", "秀": "绣", "桂": "贵", "晓": "小", "思": "斯", "雨": "语", "睿": "锐", "峰": "锋",
    "张": "章", "王": "汪", "李": "黎", "刘": "柳", "徐": "许", "杨": "阳", "林": "琳", "陈": "程",
}  # fmt: skip

# (display name, ascii form used in e-mail addresses)
FIRST_NAMES_EN: tuple[tuple[str, str], ...] = (
    ("James", "james"), ("Oliver", "oliver"), ("Emma", "emma"), ("Sophie", "sophie"),
    ("Thomas", "thomas"), ("Lukas", "lukas"), ("Anna", "anna"), ("Max", "max"),
    ("Michael", "michael"), ("Sarah", "sarah"), ("David", "david"), ("Laura", "laura"),
    ("Daniel", "daniel"), ("Hannah", "hannah"), ("Jonas", "jonas"), ("Leon", "leon"),
    ("Mia", "mia"), ("Charlotte", "charlotte"), ("Jack", "jack"), ("Emily", "emily"),
    ("William", "william"), ("Olivia", "olivia"), ("Felix", "felix"), ("Julia", "julia"),
    ("Jürgen", "juergen"), ("Chloé", "chloe"),
)  # fmt: skip
LAST_NAMES_EN: tuple[tuple[str, str], ...] = (
    ("Smith", "smith"), ("Johnson", "johnson"), ("Brown", "brown"), ("Williams", "williams"),
    ("Taylor", "taylor"), ("Müller", "mueller"), ("Schmidt", "schmidt"),
    ("Schneider", "schneider"), ("Fischer", "fischer"), ("Weber", "weber"),
    ("Wagner", "wagner"), ("Becker", "becker"), ("Davies", "davies"), ("Evans", "evans"),
    ("Wilson", "wilson"), ("Miller", "miller"), ("Davis", "davis"), ("Garcia", "garcia"),
    ("Anderson", "anderson"), ("Thompson", "thompson"), ("Walker", "walker"),
    ("Wright", "wright"), ("Hoffmann", "hoffmann"), ("Koch", "koch"), ("Groß", "gross"),
)  # fmt: skip

PERSONAL_MAIL_CN: tuple[tuple[str, float], ...] = (
    ("qq.com", 4.0),
    ("163.com", 3.0),
    ("126.com", 1.2),
    ("sina.com", 0.6),
    ("foxmail.com", 0.8),
    ("139.com", 0.5),
    ("outlook.com", 0.6),
    ("gmail.com", 0.3),
)
PERSONAL_MAIL_FOREIGN: dict[str, tuple[str, ...]] = {
    "GB": ("gmail.com", "outlook.com", "btinternet.com", "hotmail.co.uk"),
    "US": ("gmail.com", "outlook.com", "yahoo.com", "icloud.com"),
    "DE": ("gmail.com", "web.de", "gmx.de", "t-online.de"),
}

# Addresses people type into forms when they do not want to give theirs.
JUNK_EMAILS: tuple[str, ...] = (
    "test@test.com", "a@a.com", "123456@qq.com", "none@none.com", "xxx@xxx.com",
)  # fmt: skip


# --- places -------------------------------------------------------------------------------


@dataclass(frozen=True)
class City:
    zh: str
    en: str
    province_zh: str
    province_en: str
    area_code: str  # trunk prefix included ("021"), or the national dialling code abroad
    country: str  # ISO 3166-1 alpha-2
    weight: float


CITIES_CN: tuple[City, ...] = (
    City("上海", "Shanghai", "上海市", "Shanghai", "021", "CN", 9.0),
    City("北京", "Beijing", "北京市", "Beijing", "010", "CN", 8.0),
    City("深圳", "Shenzhen", "广东省", "Guangdong", "0755", "CN", 6.5),
    City("广州", "Guangzhou", "广东省", "Guangdong", "020", "CN", 6.0),
    City("杭州", "Hangzhou", "浙江省", "Zhejiang", "0571", "CN", 4.5),
    City("成都", "Chengdu", "四川省", "Sichuan", "028", "CN", 4.5),
    City("武汉", "Wuhan", "湖北省", "Hubei", "027", "CN", 3.5),
    City("南京", "Nanjing", "江苏省", "Jiangsu", "025", "CN", 3.2),
    City("苏州", "Suzhou", "江苏省", "Jiangsu", "0512", "CN", 3.4),
    City("重庆", "Chongqing", "重庆市", "Chongqing", "023", "CN", 3.0),
    City("天津", "Tianjin", "天津市", "Tianjin", "022", "CN", 2.5),
    City("西安", "Xi'an", "陕西省", "Shaanxi", "029", "CN", 2.5),
    City("长沙", "Changsha", "湖南省", "Hunan", "0731", "CN", 2.0),
    City("郑州", "Zhengzhou", "河南省", "Henan", "0371", "CN", 2.0),
    City("青岛", "Qingdao", "山东省", "Shandong", "0532", "CN", 1.8),
    City("宁波", "Ningbo", "浙江省", "Zhejiang", "0574", "CN", 1.8),
    City("合肥", "Hefei", "安徽省", "Anhui", "0551", "CN", 1.5),
    City("厦门", "Xiamen", "福建省", "Fujian", "0592", "CN", 1.2),
    City("沈阳", "Shenyang", "辽宁省", "Liaoning", "024", "CN", 1.2),
    City("东莞", "Dongguan", "广东省", "Guangdong", "0769", "CN", 1.8),
    City("佛山", "Foshan", "广东省", "Guangdong", "0757", "CN", 1.6),
    City("无锡", "Wuxi", "江苏省", "Jiangsu", "0510", "CN", 1.4),
    City("济南", "Jinan", "山东省", "Shandong", "0531", "CN", 1.0),
    City("昆明", "Kunming", "云南省", "Yunnan", "0871", "CN", 0.8),
)
CITIES_FOREIGN: tuple[City, ...] = (
    City("伦敦", "London", "英格兰", "England", "44", "GB", 3.0),
    City("曼彻斯特", "Manchester", "英格兰", "England", "44", "GB", 1.0),
    City("慕尼黑", "Munich", "巴伐利亚州", "Bavaria", "49", "DE", 2.0),
    City("斯图加特", "Stuttgart", "巴登-符腾堡州", "Baden-Württemberg", "49", "DE", 1.5),
    City("汉堡", "Hamburg", "汉堡", "Hamburg", "49", "DE", 1.0),
    City("纽约", "New York", "纽约州", "New York", "1", "US", 2.0),
    City("芝加哥", "Chicago", "伊利诺伊州", "Illinois", "1", "US", 1.2),
    City("旧金山", "San Francisco", "加利福尼亚州", "California", "1", "US", 1.2),
)

# Mobile prefixes of the three Chinese carriers (China Mobile, Unicom, Telecom).
MOBILE_PREFIXES_CN: tuple[str, ...] = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
    "156", "157", "158", "159", "166", "177", "180", "181", "183", "185", "186", "187", "188",
    "189", "198", "199",
)  # fmt: skip

# First octets of address blocks used by Chinese and European/US access networks.
IP_FIRST_OCTETS: dict[str, tuple[int, ...]] = {
    "CN": (36, 58, 60, 101, 112, 114, 116, 117, 120, 183, 223),
    "GB": (81, 86, 92, 109),
    "DE": (5, 84, 87, 91),
    "US": (24, 73, 98, 173),
}
UTC_OFFSET_HOURS: dict[str, int] = {"CN": 8, "GB": 1, "DE": 2, "US": -5}
LOCALES: dict[str, str] = {"CN": "zh-CN", "GB": "en-GB", "DE": "de-DE", "US": "en-US"}

# Share of activity per local hour 0..23: evenings for consumers, office hours for B2B.
HOURS_CONSUMER: tuple[float, ...] = (
    1.0, 0.5, 0.3, 0.2, 0.2, 0.3, 0.8, 1.5, 2.5, 3.0, 3.2, 3.5,
    4.0, 3.5, 3.2, 3.0, 3.0, 3.2, 3.8, 4.5, 5.5, 6.0, 5.0, 2.5,
)  # fmt: skip
HOURS_OFFICE: tuple[float, ...] = (
    0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 1.0, 3.0, 6.0, 7.0, 6.5,
    3.5, 5.0, 6.5, 6.5, 6.0, 4.5, 2.0, 1.2, 1.0, 0.8, 0.5, 0.2,
)  # fmt: skip


# --- companies ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Industry:
    zh: str
    en: str
    company_suffix_zh: str  # the business part of a Chinese company name
    company_word_en: str
    domain_tag: str


INDUSTRIES: tuple[Industry, ...] = (
    Industry("汽车零部件", "Automotive Parts", "汽车部件", "Automotive Components", "auto"),
    Industry("电子制造", "Electronics Manufacturing", "电子科技", "Electronics", "tech"),
    Industry("新能源", "New Energy", "新能源科技", "Energy Systems", "energy"),
    Industry("食品饮料", "Food & Beverage", "食品", "Foods", "food"),
    Industry("医疗器械", "Medical Devices", "医疗器械", "Medical", "med"),
    Industry("化工", "Chemicals", "化工", "Chemicals", "chem"),
    Industry("物流仓储", "Logistics", "物流", "Logistics", "logistics"),
    Industry("金属加工", "Metalworking", "精密机械", "Precision Engineering", "precision"),
    Industry("纺织服装", "Textiles", "纺织", "Textiles", "textile"),
)

# Invented trade names (字号) with their pinyin, for Chinese company names and domains.
TRADE_NAMES_CN: tuple[tuple[str, str], ...] = (
    ("鼎泰", "dingtai"), ("瑞丰", "ruifeng"), ("华锐", "huarui"), ("宏远", "hongyuan"),
    ("金驰", "jinchi"), ("博创", "bochuang"), ("信和", "xinhe"), ("联拓", "liantuo"),
    ("天越", "tianyue"), ("启明", "qiming"), ("卓锋", "zhuofeng"), ("海川", "haichuan"),
    ("中恒", "zhongheng"), ("盛隆", "shenglong"), ("精诚", "jingcheng"), ("永固", "yonggu"),
    ("东芯", "dongxin"), ("德润", "derun"), ("恒通", "hengtong"), ("华曜", "huayao"),
    ("嘉禾", "jiahe"), ("润泽", "runze"), ("同创", "tongchuang"), ("锦程", "jincheng"),
)  # fmt: skip
TRADE_NAMES_FOREIGN: tuple[str, ...] = (
    "Nordwerk", "Brightwater", "Redwood", "Alpenstahl", "Hartmann", "Kestrel", "Bluecrest",
    "Rheintal", "Ironbridge", "Lakeshore", "Falkenberg", "Silverline",
)  # fmt: skip
COMPANY_FORMS: dict[str, tuple[str, str]] = {  # country -> (legal form, domain suffix)
    "DE": ("GmbH", "de"),
    "GB": ("Ltd", "co.uk"),
    "US": ("Inc.", "com"),
}

JOB_TITLES: tuple[tuple[str, str], ...] = (
    ("采购经理", "Purchasing Manager"), ("设备部经理", "Equipment Manager"),
    ("生产总监", "Production Director"), ("工程师", "Engineer"), ("总经理", "General Manager"),
    ("技术总监", "Technical Director"), ("厂长", "Plant Manager"), ("IT经理", "IT Manager"),
    ("项目经理", "Project Manager"), ("采购专员", "Buyer"),
)  # fmt: skip

# Sales reps and service agents: the "Owner" and "Agent" columns.
SALES_REPS_CN: tuple[str, ...] = ("王磊", "陈静", "刘洋", "赵敏", "孙浩", "周婷", "吴刚", "郑丽")
SALES_REPS_FOREIGN: tuple[str, ...] = ("Anna Schmidt", "Mark Evans", "Lukas Weber")
SERVICE_AGENTS: tuple[str, ...] = (
    "李娜(A017)",
    "张敏(A022)",
    "黄杰(A031)",
    "何静(A045)",
    "林峰(A052)",
    "Emily Walker(A090)",
)


# --- products -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    sku: str
    zh: str
    en: str
    category_zh: str
    category_en: str
    price: float  # CNY, VAT included as Chinese prices are
    slug: str


APPLIANCES: tuple[Product, ...] = (
    Product("GA-AC-1201", "星河变频空调 1.5匹", "Galaxy Inverter AC 1.5HP", "空调", "Air Conditioners", 2999.0, "inverter-ac-15"),
    Product("GA-AC-2201", "星河新风空调 3匹柜机", "Galaxy Fresh-Air AC 3HP Floor", "空调", "Air Conditioners", 7599.0, "fresh-air-ac-3"),
    Product("GA-WM-1001", "星河滚筒洗衣机 10公斤", "Galaxy Front-Load Washer 10kg", "洗衣机", "Washers", 2699.0, "front-load-washer-10"),
    Product("GA-WM-1202", "星河洗烘一体机 12公斤", "Galaxy Washer-Dryer 12kg", "洗衣机", "Washers", 4999.0, "washer-dryer-12"),
    Product("GA-RF-5001", "星河对开门冰箱 501升", "Galaxy Side-by-Side Fridge 501L", "冰箱", "Refrigerators", 4299.0, "side-by-side-501"),
    Product("GA-RF-3201", "星河三门冰箱 320升", "Galaxy 3-Door Fridge 320L", "冰箱", "Refrigerators", 2399.0, "three-door-320"),
    Product("GA-RB-0701", "星河扫地机器人 X7", "Galaxy Robot Vacuum X7", "清洁电器", "Cleaning", 2599.0, "robot-vacuum-x7"),
    Product("GA-VC-0301", "星河无线吸尘器 V3", "Galaxy Cordless Vacuum V3", "清洁电器", "Cleaning", 1299.0, "cordless-vacuum-v3"),
    Product("GA-AP-0501", "星河空气净化器 P5", "Galaxy Air Purifier P5", "环境电器", "Air Care", 1599.0, "air-purifier-p5"),
    Product("GA-DW-1301", "星河嵌入式洗碗机 13套", "Galaxy Built-in Dishwasher 13", "厨房电器", "Kitchen", 3999.0, "dishwasher-13"),
    Product("GA-RC-0401", "星河IH电饭煲 4升", "Galaxy IH Rice Cooker 4L", "厨房电器", "Kitchen", 599.0, "ih-rice-cooker-4"),
    Product("GA-BL-0201", "星河破壁机 B2", "Galaxy High-Speed Blender B2", "厨房电器", "Kitchen", 899.0, "blender-b2"),
    Product("GA-WH-6001", "星河电热水器 60升", "Galaxy Water Heater 60L", "热水器", "Water Heaters", 1899.0, "water-heater-60"),
    Product("GA-WP-0801", "星河净水器 800G", "Galaxy RO Water Purifier 800G", "净水", "Water Purifiers", 2799.0, "ro-purifier-800"),
    Product("GA-HD-0101", "星河高速吹风机 H1", "Galaxy Hair Dryer H1", "个护电器", "Personal Care", 499.0, "hair-dryer-h1"),
)  # fmt: skip

INDUSTRIAL: tuple[Product, ...] = (
    Product("GI-RB-6A", "星河六轴工业机器人 GX-6", "Galaxy 6-Axis Industrial Robot GX-6", "工业机器人", "Industrial Robots", 268000.0, "robot-gx6"),
    Product("GI-RB-SC", "星河SCARA机器人 GS-4", "Galaxy SCARA Robot GS-4", "工业机器人", "Industrial Robots", 128000.0, "scara-gs4"),
    Product("GI-CNC-850", "星河立式加工中心 VMC-850", "Galaxy Vertical Machining Center VMC-850", "数控机床", "CNC Machines", 520000.0, "vmc-850"),
    Product("GI-LC-3015", "星河光纤激光切割机 LC-3015", "Galaxy Fiber Laser Cutter LC-3015", "激光设备", "Laser Systems", 760000.0, "laser-3015"),
    Product("GI-SV-750", "星河伺服电机套装 750W", "Galaxy Servo Motor Kit 750W", "运动控制", "Motion Control", 4800.0, "servo-750"),
    Product("GI-PLC-X2", "星河PLC控制器 X2", "Galaxy PLC Controller X2", "运动控制", "Motion Control", 12800.0, "plc-x2"),
    Product("GI-AGV-1T", "星河AGV自动导引车 1吨", "Galaxy AGV 1t", "智能物流", "Intralogistics", 185000.0, "agv-1t"),
    Product("GI-AC-37", "星河永磁变频空压机 37kW", "Galaxy PM VSD Air Compressor 37kW", "空压机", "Compressors", 98000.0, "compressor-37"),
    Product("GI-IOT-PM", "星河预测性维护平台(年订阅)", "Galaxy Predictive Maintenance Platform (annual)", "工业软件", "Industrial Software", 60000.0, "pdm-platform"),
)  # fmt: skip

# Appliance flagship stores by city (store code, name).
STORES: dict[str, tuple[str, str]] = {
    "上海": ("SH01", "星河电器 上海南京西路旗舰店"),
    "北京": ("BJ01", "星河电器 北京三里屯店"),
    "深圳": ("SZ01", "星河电器 深圳万象城店"),
    "广州": ("GZ01", "星河电器 广州天河城店"),
    "杭州": ("HZ01", "星河电器 杭州湖滨店"),
    "成都": ("CD01", "星河电器 成都春熙路店"),
    "武汉": ("WH01", "星河电器 武汉楚河汉街店"),
    "南京": ("NJ01", "星河电器 南京新街口店"),
}


# --- marketing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Channel:
    code: str
    zh: str
    en: str
    utm_source: str
    utm_medium: str
    referrer: str
    cpc: float  # CNY per click, rough
    ctr: float  # clicks per impression


CHANNELS: dict[str, Channel] = {
    c.code: c
    for c in (
        Channel("baidu_sem", "百度搜索推广", "Baidu SEM", "baidu", "cpc", "https://www.baidu.com/", 6.5, 0.021),
        Channel("wechat_ads", "微信广告", "WeChat Ads", "wechat", "paid_social", "https://mp.weixin.qq.com/", 3.8, 0.012),
        Channel("douyin", "抖音巨量引擎", "Douyin Ads", "douyin", "paid_video", "https://www.douyin.com/", 2.6, 0.009),
        Channel("linkedin", "领英广告", "LinkedIn Ads", "linkedin", "paid_social", "https://www.linkedin.com/", 38.0, 0.006),
        Channel("email", "邮件营销", "Email", "newsletter", "email", "", 0.15, 0.035),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Campaign:
    bu: str
    channel: str
    name: str  # as marketers type it: Chinese, English or both
    content: str  # utm_content: the creative
    terms: tuple[str, ...]  # utm_term: search keywords or audience
    start: str  # ISO date, inclusive
    end: str  # ISO date, inclusive
    audience: str = "cn"  # cn, foreign (outside China) or all
    landing: str = ""  # the kind of page ads lead to (summit, whitepaper); "" for products


CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign("appliances", "baidu_sem", "2026春季焕新_百度SEM", "text_ad_a", ("变频空调", "扫地机器人推荐", "洗碗机哪个牌子好", "星河电器"), "2026-01-05", "2026-03-31"),
    Campaign("appliances", "wechat_ads", "春节焕新季 Lunar New Year Refresh", "moments_video", ("家电以旧换新", "新春礼遇"), "2026-01-20", "2026-02-28"),
    Campaign("appliances", "douyin", "扫地机器人X7新品首发", "kol_review_15s", ("扫地机器人", "X7开箱"), "2026-03-01", "2026-04-30"),
    Campaign("appliances", "baidu_sem", "空调清凉季 Summer Cooling", "text_ad_b", ("空调 1.5匹 变频", "新风空调", "星河空调"), "2026-04-15", "2026-08-31"),
    Campaign("appliances", "douyin", "618年中大促 | 618 Mid-Year Sale", "live_stream", ("618家电", "直播间优惠"), "2026-05-20", "2026-06-20"),
    Campaign("appliances", "wechat_ads", "开学季 Back to School", "moments_image", ("宿舍小家电", "吹风机"), "2026-08-01", "2026-09-15"),
    Campaign("appliances", "email", "会员月刊 Member Newsletter", "monthly_issue", ("members",), "2026-01-01", "2026-09-30", "all"),
    Campaign("industrial", "baidu_sem", "工业机器人_品牌词", "brand_text", ("工业机器人", "六轴机器人价格", "星河机器人"), "2026-01-01", "2026-09-30"),
    Campaign("industrial", "baidu_sem", "数控机床询价 CNC Quote", "quote_text", ("立式加工中心", "数控机床 厂家", "激光切割机报价"), "2026-02-15", "2026-07-31"),
    Campaign("industrial", "wechat_ads", "2026智能制造峰会·上海站", "summit_poster_sh", ("制造业决策者",), "2026-03-01", "2026-04-15", "cn", "summit"),
    Campaign("industrial", "wechat_ads", "2026智能制造峰会·深圳站", "summit_poster_sz", ("制造业决策者",), "2026-05-01", "2026-06-10", "cn", "summit"),
    Campaign("industrial", "wechat_ads", "2026智能制造峰会·成都站", "summit_poster_cd", ("制造业决策者",), "2026-07-15", "2026-09-09", "cn", "summit"),
    Campaign("industrial", "linkedin", "Smart Factory Whitepaper 2026", "sponsored_content", ("operations directors", "plant managers"), "2026-02-01", "2026-06-30", "all", "whitepaper"),
    Campaign("industrial", "linkedin", "Hannover Messe 2026 Invitation", "event_invite", ("manufacturing DACH",), "2026-03-01", "2026-04-19", "foreign", "summit"),
    Campaign("industrial", "linkedin", "预测性维护白皮书 Predictive Maintenance", "carousel", ("maintenance managers", "设备经理"), "2026-05-01", "2026-09-30", "all", "whitepaper"),
    Campaign("industrial", "email", "工业洞察月刊 Industrial Insights", "monthly_issue", ("subscribers",), "2026-01-01", "2026-09-30", "all"),
    Campaign("service", "wechat_ads", "延保服务 Extended Warranty", "moments_image", ("家电延保",), "2026-06-01", "2026-09-30"),
    Campaign("service", "email", "售后回访 Service Follow-up", "after_repair", ("customers",), "2026-01-01", "2026-09-30"),
)  # fmt: skip


@dataclass(frozen=True)
class Summit:
    code: str
    zh: str
    en: str
    city: str
    date: str  # ISO date of the check-in day
    foreign: bool = False


SUMMITS: tuple[Summit, ...] = (
    Summit("SMS-2026-SH", "2026星河智能制造峰会·上海站", "Galaxy Smart Manufacturing Summit 2026 · Shanghai", "上海", "2026-04-16"),
    Summit("HM-2026", "2026汉诺威工业博览会 星河展台", "Hannover Messe 2026 · Galaxy booth", "汉诺威", "2026-04-21", True),
    Summit("SMS-2026-SZ", "2026星河智能制造峰会·深圳站", "Galaxy Smart Manufacturing Summit 2026 · Shenzhen", "深圳", "2026-06-11"),
    Summit("SMS-2026-CD", "2026星河智能制造峰会·成都站", "Galaxy Smart Manufacturing Summit 2026 · Chengdu", "成都", "2026-09-10"),
)  # fmt: skip

WHITEPAPERS: tuple[tuple[str, str, str], ...] = (  # (slug, zh, en)
    ("smart-factory-2026", "2026智能工厂白皮书", "Smart Factory Whitepaper 2026"),
    ("predictive-maintenance", "预测性维护实践指南", "Predictive Maintenance Playbook"),
    ("robot-selection", "工业机器人选型指南", "Industrial Robot Selection Guide"),
    ("cnc-energy", "数控机床能效报告", "CNC Energy Efficiency Report"),
)

WECHAT_MENUS: dict[str, tuple[tuple[str, str], ...]] = {  # bu -> (menu key, label)
    "appliances": (("MEMBER_CENTER", "会员中心"), ("NEW_ARRIVALS", "新品推荐"), ("ONLINE_SERVICE", "在线客服")),
    "industrial": (("SOLUTIONS", "解决方案"), ("SUMMIT", "峰会报名"), ("CONTACT_SALES", "联系销售")),
    "service": (("REPAIR", "报修"), ("WARRANTY", "保修查询"), ("PROGRESS", "进度查询")),
}  # fmt: skip


# --- service ------------------------------------------------------------------------------

TICKET_CATEGORIES_B2C: tuple[str, ...] = ("安装", "维修", "退换货", "咨询", "投诉")
TICKET_CATEGORIES_B2B: tuple[str, ...] = ("调试", "维修", "备件", "培训", "咨询")
TICKET_CHANNELS: tuple[tuple[str, float], ...] = (
    ("400热线", 4.0),
    ("微信", 3.0),
    ("邮件", 1.5),
    ("web", 1.5),
)

SURVEY_COMMENTS: dict[str, tuple[str, ...]] = {
    "zh_good": ("师傅很专业，上门准时", "处理很快，满意", "客服态度很好", "问题一次解决了", "安装很规范，点赞"),
    "zh_bad": ("等了三天才有人联系", "电话一直打不通", "维修后还是有问题", "配件太贵了", "上门时间一改再改"),
    "en_good": ("Quick and friendly support.", "Engineer was on time and very professional.", "Issue fixed on the first visit."),
    "en_bad": ("Took a week to get a reply.", "Had to explain the problem three times.", "Spare part still not delivered."),
}  # fmt: skip

# --- clients ------------------------------------------------------------------------------

USER_AGENTS_DESKTOP: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/108.0.5359.95 Safari/537.36 QIHU 360SE",
)  # fmt: skip
USER_AGENTS_MOBILE_CN: tuple[str, ...] = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2f) NetType/WIFI Language/zh_CN",
    "Mozilla/5.0 (Linux; Android 14; ALN-AL00 Build/HUAWEIALN-AL00; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/114.0.5735.196 Mobile Safari/537.36 MicroMessenger/8.0.47.2560(0x28002F35) NetType/5G Language/zh_CN",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; 23127PN0CC) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36 XiaoMi/MiuiBrowser/18.2.150419",
)  # fmt: skip
USER_AGENTS_MOBILE_FOREIGN: tuple[str, ...] = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
)  # fmt: skip


@dataclass(frozen=True)
class Handset:
    manufacturer: str
    model: str
    os_name: str
    os_version: str
    platform: str  # "ios" or "android": which SDK runs on it


HANDSETS_CN: tuple[Handset, ...] = (
    Handset("Apple", "iPhone15,2", "iOS", "17.4.1", "ios"),
    Handset("Apple", "iPhone16,1", "iOS", "17.5", "ios"),
    Handset("Apple", "iPhone14,5", "iOS", "16.7.8", "ios"),
    Handset("HUAWEI", "ALN-AL00", "HarmonyOS", "4.0.0", "android"),
    Handset("Xiaomi", "23127PN0CC", "Android", "14", "android"),
    Handset("OPPO", "PHZ110", "Android", "14", "android"),
    Handset("vivo", "V2309A", "Android", "14", "android"),
    Handset("HONOR", "PGT-AN10", "Android", "13", "android"),
)
HANDSETS_FOREIGN: tuple[Handset, ...] = (
    Handset("Apple", "iPhone15,3", "iOS", "17.5", "ios"),
    Handset("samsung", "SM-S921B", "Android", "14", "android"),
    Handset("Google", "Pixel 8", "Android", "14", "android"),
)

LIBRARIES: dict[str, dict[str, str]] = {
    "web": {"name": "analytics.js", "version": "next-1.70.0"},
    "ios": {"name": "analytics-ios", "version": "4.1.8"},
    "android": {"name": "analytics-android", "version": "4.11.3"},
    "server": {"name": "analytics-python", "version": "2.3.2"},
}

# Sites per business unit: (Chinese site, international site).
SITES: dict[str, tuple[str, str]] = {
    "appliances": ("https://www.galaxy-home.cn", "https://global.galaxy-home.com"),
    "industrial": ("https://www.galaxy-industrial.com.cn", "https://www.galaxy-industrial.com"),
    "service": ("https://service.galaxy-group.cn", "https://service.galaxy-group.com"),
}
SITE_NAMES: dict[str, tuple[str, str]] = {
    "appliances": ("星河电器官网", "Galaxy Appliances"),
    "industrial": ("星河工业设备", "Galaxy Industrial"),
    "service": ("星河售后服务", "Galaxy Service"),
}
# WeChat official accounts, one per business unit: an openid is only valid under its app id.
WECHAT_APP_IDS: dict[str, str] = {
    "appliances": "wx5a1f0c2e9b7d4310",
    "industrial": "wx9c03be71a4d62f58",
    "service": "wx27e8d5f01c9a3b64",
}
APP_INFO: dict[str, str] = {
    "name": "星河智家",
    "version": "4.2.0",
    "build": "420",
    "namespace": "com.galaxy.home",
}
