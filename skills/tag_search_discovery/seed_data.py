"""Vocabulary of ``soundhive seed``: Korean and English words real titles are made of."""

from __future__ import annotations

KO_ADJ = [
    "잔잔한", "조용한", "따뜻한", "차가운", "푸른", "눈부신", "외로운", "그리운", "달콤한",
    "쓸쓸한", "행복한", "느린", "작은", "깊은", "희미한", "아련한", "설레는", "흐린", "맑은",
    "붉은", "하얀", "까만", "오래된", "새로운", "낯선", "익숙한", "포근한", "선선한", "뜨거운",
    "수줍은",
]  # fmt: skip
KO_NOUN = [
    "밤", "산책", "새벽", "비", "여름", "겨울", "봄", "가을", "바다", "별", "꿈", "사랑", "기억",
    "도시", "바람", "하늘", "노래", "커피", "창가", "오후", "첫눈", "골목", "버스", "정류장",
    "편지", "고백", "이별", "우주", "달빛", "햇살", "구름", "숲", "파도", "여행", "시간", "우리",
    "마음", "일기", "서울", "부산", "제주", "한강", "지하철", "옥상", "드라이브", "라디오",
    "필름", "소나기", "노을", "산책길",
]  # fmt: skip
KO_TAIL = [
    "이야기",
    "소리",
    "풍경",
    "속에서",
    "아래서",
    "끝에서",
    "처럼",
    "같은 날",
    "노래",
    "편지",
]
EN_ADJ = [
    "midnight", "golden", "neon", "quiet", "lazy", "broken", "electric", "velvet", "summer",
    "winter", "lonely", "silver", "paper", "endless", "sleepy", "faded", "crystal", "wild",
    "soft", "blue", "little", "last", "first", "hidden", "distant", "slow", "sweet", "bitter",
    "city", "ocean", "lofi", "chill", "late night", "rainy", "sunday",
]  # fmt: skip
EN_NOUN = [
    "drive", "dreams", "lights", "rain", "coffee", "memories", "waves", "heart", "sky", "walk",
    "love", "night", "morning", "streets", "echoes", "letters", "stars", "tides", "garden",
    "window", "train", "sunset", "horizon", "radio", "bloom", "fever", "groove", "vibes",
    "beats", "story", "river", "moon", "skyline", "season", "shadows", "hour", "study session",
]  # fmt: skip
EN_SUFFIX = [
    " (Remix)",
    " (Acoustic)",
    " Pt. 2",
    " (Live)",
    " (Demo)",
    " - Night Ver.",
    " (Sped Up)",
]
RARE = [
    "zephyrine", "quillfeather", "아지랑이", "윤슬", "saudade", "hiraeth", "물비늘",
    "petrichor", "sonder", "해거름",
]  # fmt: skip
"""Each lands in about one title in 50 000: the "rare word" of the benchmark."""
TAGS = [
    "lofi", "chill", "hiphop", "kpop", "indie", "jazz", "rnb", "edm", "house", "techno",
    "ambient", "acoustic", "piano", "guitar", "study", "sleep", "night", "rain", "cafe",
    "city pop", "synthwave", "rock", "pop", "ballad", "folk", "soul", "funk", "trap", "drill",
    "jpop", "citypop", "bedroom pop", "dream pop", "shoegaze", "post-rock", "lo-fi", "hip-hop",
    "인디", "힙합", "발라드", "감성", "새벽", "드라이브", "공부", "카페", "재즈", "피아노",
    "어쿠스틱", "여름", "겨울", "봄", "가을", "밤", "비", "산책", "댄스", "록", "트로트", "ost",
    "instrumental", "beats", "vocal", "remix", "cover", "live", "demo", "orchestral", "cinematic",
    "workout", "focus", "relax", "party", "romance", "breakup", "summer", "winter", "seoul",
    "busan", "jeju", "tokyo", "newjeans style", "90s", "2000s", "retro", "vaporwave", "kawaii",
]  # fmt: skip
"""Ordered by how often they are used (the seed skews towards the front)."""
FIRST_NAMES = [
    "민지", "서연", "지훈", "하은", "도윤", "수아", "예준", "지우", "시우", "하린", "유나", "준서",
    "Mina", "Alex", "Jordan", "Sam", "Luna", "Kai", "Noah", "Mia", "Leo", "Zoe", "Ivy", "Max",
    "Ruby", "Finn", "Nova", "Jay", "Theo", "Ella", "Ray", "Iris",
]  # fmt: skip
STAGE_SUFFIX = ["", "", "", " Beats", " Lab", ".wav", " Project", " 밴드", " Trio", " Sound"]
KO_DESCRIPTION = [
    "에 듣기 좋은 노래", " 생각하며 만든 곡입니다", "의 기억", " 같은 노래", "에 어울리는 비트",
    " 이야기를 담았어요", " 속을 걷는 기분으로", "에 보내는 편지",
]  # fmt: skip
"""Endings after an adjective and a noun (``잔잔한 밤에 듣기 좋은 노래``)."""
EN_DESCRIPTION = [
    "Recorded on a", "Written for a", "Made during a", "Inspired by a", "Beats for a",
    "A slow song about a", "Mixed on headphones after a",
]  # fmt: skip
"""Openings before an adjective and a noun (``Written for a rainy morning.``)."""
COMMENTS = [
    "좋아요!", "너무 좋다 ㅠㅠ", "매일 듣는 중", "Love this", "so good", "on repeat",
    "이 부분 최고", "what a vibe", "더 올려주세요", "🔥🔥",
]  # fmt: skip
