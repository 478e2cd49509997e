"""Short texts in the natural suites' languages the paper's data lacks, written for xdet's tests (not
taken from anywhere): two everyday sentences per language, BCMS in both scripts, Chinese in traditional
characters. They have no toxic content; they test the language identifier, nothing else."""

from __future__ import annotations

HANDMADE: dict[str, tuple[str, ...]] = {
    "cs": ("Dnes ráno jsem šel do obchodu koupit chleba a mléko.", "Můj bratr bydlí v malém městě nedaleko hor."),
    "da": ("I går aftes spiste vi middag hos mine bedsteforældre.", "Hunden løber hurtigt gennem haven efter bolden."),
    "fi": ("Eilen illalla kävimme kävelyllä järven rannalla koko perheen kanssa.",
           "Minun ystäväni asuu pienessä kylässä kaukana pohjoisessa."),
    "fr": ("Hier soir, nous avons mangé chez mes grands-parents.", "Le chien court vite dans le jardin après la balle."),
    "he": ("אתמול בערב אכלנו ארוחת ערב אצל סבא וסבתא שלי.", "הכלב רץ מהר בגינה אחרי הכדור האדום."),
    "hu": ("Tegnap este a nagyszüleimnél vacsoráztunk együtt a családdal.", "A kutya gyorsan fut a kertben a labda után."),
    "id": ("Kemarin malam kami makan malam di rumah kakek dan nenek saya.",
           "Anjing itu berlari cepat di kebun mengejar bola."),
    "it": ("Ieri sera abbiamo cenato a casa dei miei nonni.", "Il cane corre velocemente nel giardino dietro alla palla."),
    "ja": ("昨日の夜、祖父母の家で夕食を食べました。", "犬がボールを追いかけて庭を走っています。"),
    "ko": ("어제 저녁에 우리는 할머니 댁에서 저녁을 먹었습니다.", "강아지가 공을 쫓아서 정원에서 빨리 달리고 있어요."),
    "nl": ("Gisteravond hebben we bij mijn grootouders gegeten.", "De hond rent snel door de tuin achter de bal aan."),
    "nb": ("I går kveld spiste vi middag hos besteforeldrene mine.", "Hunden løper fort gjennom hagen etter ballen."),
    "pl": ("Wczoraj wieczorem zjedliśmy kolację u moich dziadków.", "Pies szybko biegnie przez ogród za piłką."),
    "pt": ("Ontem à noite jantamos na casa dos meus avós.", "O cachorro corre rapidamente pelo jardim atrás da bola."),
    "sv": ("Igår kväll åt vi middag hos mina morföräldrar.", "Hunden springer snabbt genom trädgården efter bollen."),
    "sw": ("Jana jioni tulikula chakula nyumbani kwa babu na bibi yangu.",
           "Mbwa anakimbia haraka bustanini akifuata mpira wake."),
    "th": ("เมื่อวานตอนเย็นเรากินข้าวที่บ้านของคุณยายกับคุณตา", "สุนัขวิ่งเร็วในสวนเพื่อไล่ตามลูกบอล"),
    "tr": ("Dün akşam büyükannemlerin evinde hep birlikte akşam yemeği yedik.",
           "Köpek topun peşinden bahçede hızla koşuyor."),
    "hbs": ("Jučer navečer smo večerali kod mojih baka i djeda.", "Pas brzo trči kroz vrt za loptom.",
            "Јуче увече смо вечерали код моје баке и деде.", "Пас брзо трчи кроз башту за лоптом."),
    "zh": ("昨天晚上我們在祖父母家吃了晚飯。", "狗在花園裡追著球快速地跑。"),
}
